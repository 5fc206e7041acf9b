"""Log in and out with Django's own views (LoginView refuses a `next` to another host)."""
from __future__ import annotations

from django.contrib.auth import views as auth_views

login_view = auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True)
# POST only (Django 5): a link or an image on another site cannot log the user out.
logout_view = auth_views.LogoutView.as_view()
