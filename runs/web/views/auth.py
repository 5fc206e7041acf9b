"""Log in and out with Django's own views (LoginView refuses a `next` to another host)."""
from __future__ import annotations

from django.contrib.auth import views as auth_views


class LoginView(auth_views.LoginView):
    def get_redirect_url(self) -> str:
        # A logged-in user sent back to this very page (`?next=/login/`) would loop: Django's
        # LoginView raises ValueError for it, a 500. Such a `next` is ignored like an offsite one.
        url = super().get_redirect_url()
        return "" if url == self.request.path else url


login_view = LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True)
# POST only (Django 5): a link or an image on another site cannot log the user out.
logout_view = auth_views.LogoutView.as_view()
