"""Create the roles and a first user, so a fresh `make run` can be logged into at once."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

ADMIN_USERNAME = "admin"
GROUP_NAMES = ("Viewer", "Operator", "Admin")


class Command(BaseCommand):
    help = "Create the Viewer, Operator and Admin groups, and the admin user (Operator and Admin) if it does not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            groups = {name: Group.objects.get_or_create(name=name)[0] for name in GROUP_NAMES}
            user_model = get_user_model()
            if user_model.objects.filter(username=ADMIN_USERNAME).exists():
                self.stdout.write(f"User {ADMIN_USERNAME!r} exists; its password is unchanged.")
                return
            password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user = user_model.objects.create_user(username=ADMIN_USERNAME, password=password)
            # Admin: also manages Variables through the REST API (runs/web/api_v2/auth.py).
            user.groups.add(groups["Operator"], groups["Admin"])

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
