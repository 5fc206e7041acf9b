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
class LogoutView(auth_views.LogoutView):
    def get_redirect_url(self) -> str:
        # `next=/logout/` would make Django render a "logged out" page this project has no
        # template for (a 500): it is ignored, and the user goes to the login page.
        url = super().get_redirect_url()
        return "" if url == self.request.path else url


# POST only (Django 5): a link or an image on another site cannot log the user out.
logout_view = LogoutView.as_view()
