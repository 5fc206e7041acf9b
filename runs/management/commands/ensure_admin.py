"""Create the roles and a first user, so a fresh `make run` can be logged into at once."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from runs.roles import ADMIN_GROUP, ensure_role_groups, set_user_role

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the Viewer, Operator and Admin groups, and the admin user (Operator and Admin) if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            ensure_role_groups()
            user_model = get_user_model()
            existing = user_model.objects.filter(username=ADMIN_USERNAME).first()
            if existing is not None:
                if existing.groups.filter(name=ADMIN_GROUP).exists() and not existing.is_staff:
                    # Made before Admins managed users in the Django admin (which wants staff).
                    set_user_role(existing, "admin")
                self.stdout.write(f"User {ADMIN_USERNAME!r} exists; its password is unchanged.")
                return
            password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user = user_model.objects.create_user(username=ADMIN_USERNAME, password=password)
            set_user_role(user, "admin")

        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(f"Created user {ADMIN_USERNAME!r} with the password from ADMIN_PASSWORD.")
            return
        # Kept on disk too: the first run's output scrolls away under the servers' logs.
        password_file = settings.VAR_DIR / "admin_password"
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
        self.stdout.write(
            self.style.SUCCESS(f"Created user {ADMIN_USERNAME!r} with password {password}")
            + f" (also in {password_file})"
        )
