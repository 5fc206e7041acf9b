"""``manage.py create_user NAME --role viewer|operator|admin``: a user for scripts and set-ups."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from runs.roles import ROLES, set_user_role


class Command(BaseCommand):
    help = ("Create a user with a role (viewer reads, operator also acts, admin also manages users); "
            "with --update, change the role (and password, if given) of an existing user.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument("--password", help="the password (visible in the process list: prefer --password-stdin)")
        secret.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
        parser.add_argument("--email", default="")
        parser.add_argument("--update", action="store_true", help="change an existing user instead of refusing")

    def handle(self, *args: Any, username: str, role: str, password: str | None, password_stdin: bool, email: str,
               update: bool, **options: Any) -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif password is None and sys.stdin.isatty():
            password = getpass.getpass(f"Password for {username}: ")
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is not None and not update:
            raise CommandError(f"User {username!r} exists (use --update to change its role)")
        if user is None and not password:
            raise CommandError("A new user needs a password: --password-stdin, --password, or type it at the prompt")
        if password:
            try:
                password_validation.validate_password(password, user)
            except ValidationError as exc:
                raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            if user is None:
                user = user_model.objects.create_user(username=username, email=email, password=password)
                verb = "Created"
            else:
                if password:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                verb = "Updated"
            set_user_role(user, role)  # type: ignore[arg-type]
        self.stdout.write(f"{verb} user {username!r} with role {role}")
