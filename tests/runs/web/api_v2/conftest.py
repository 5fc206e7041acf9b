"""Users per role, their tokens, and a Django test client that sends one as Bearer."""
from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client

from runs.web.api_v2.auth import issue_token
from tests.conftest import make_user


@pytest.fixture
def token_for(db: None) -> Callable[[str | None], str]:
    """A token for a new user in that group ("Viewer", "Operator", "Admin"; None: in none)."""

    def make(group: str | None) -> str:
        user: User = make_user(f"u-{(group or 'none').lower()}-{User.objects.count()}", group)
        return issue_token(user)

    return make


class ApiClient(Client):
    """``get``/``post``/``patch``/``delete`` with a Bearer token and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        super().__init__(headers={"Authorization": f"Bearer {token}"} if token else {})

    def send(self, method: str, path: str, body: object = None, **extra: object):  # type: ignore[no-untyped-def]
        call = getattr(self, method)
        if body is None:
            return call(path, **extra)
        return call(path, json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def api(token_for: Callable[[str | None], str]) -> Callable[[str | None], ApiClient]:
    return lambda group: ApiClient(token_for(group))
