from __future__ import annotations

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from runs.web.timezones import remember_at_login

        user_logged_in.connect(remember_at_login, dispatch_uid="runs.remember_time_zone")
