"""Tokens and roles, as Airflow 3's simple auth manager has them.

``POST /auth/token`` trades a username and password for a signed, expiring JWT; the API takes it
as ``Authorization: Bearer``. The dashboard's session works too (CSRF checked on its writes).
Roles are the dashboard's: every active user reads (Viewer), the Operator group (and Admins)
also triggers, clears, marks, pauses and manages Variables (as Airflow's Op role), the Admin group
(and superusers) also manages users in the Django admin.
"""
from __future__ import annotations

import time
from typing import Any, Literal

import jwt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from runs.web.queries import in_group
from runs.web.views.common import is_operator

ADMIN_GROUP = "Admin"
ALGORITHM = "HS256"
AUDIENCE = "dagsapp-api"

Role = Literal["viewer", "operator", "admin"]


def issue_token(user: AbstractBaseUser) -> str:
    now = int(time.time())
    claims = {"sub": str(user.pk), "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + settings.API_JWT_EXPIRATION_SEC}
    return jwt.encode(claims, settings.API_JWT_SECRET, algorithm=ALGORITHM)


def user_from_token(token: str) -> User | None:
    """The active user a valid, unexpired token names; None for anything else."""
    try:
        claims = jwt.decode(token, settings.API_JWT_SECRET, algorithms=[ALGORITHM], audience=AUDIENCE,
                            options={"require": ["exp", "sub"]})
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = user_from_token(token)
        if user is not None:
            request.user = user
        return user


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (bool(getattr(user, "is_superuser", False)) or in_group(user, ADMIN_GROUP))


def has_role(user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    if not user.is_authenticated:
        return False
    if role == "viewer":
        return True
    if role == "operator":
        return is_operator(user) or is_admin(user)
    return is_admin(user)


def require(request: HttpRequest, role: Role) -> None:
    """403 before anything changes, unless the caller has the role."""
    if not has_role(request.user, role):
        raise HttpError(403, f"Forbidden: this needs the {role.capitalize()} role")


# Both kinds of caller: a client with a token, the dashboard's own pages with their session
# (SessionAuth checks the CSRF token on a write, as Django's forms do).
API_AUTH: list[Any] = [BearerAuth(), SessionAuth()]


class LoginBody(Schema):
    username: str
    password: str


class LoginResponse(Schema):
    access_token: str


token_api = NinjaAPI(title="dagsapp auth", urls_namespace="api_auth", docs_url=None, openapi_url=None)


@token_api.post("/token", response={201: LoginResponse}, auth=None, summary="Create Token")
def create_token(request: HttpRequest, body: LoginBody) -> Status[dict[str, str]]:
    return _token(request, body)


@token_api.post("/token/cli", response={201: LoginResponse}, auth=None, summary="Create Token Cli")
def create_token_cli(request: HttpRequest, body: LoginBody) -> Status[dict[str, str]]:
    """Where ``airflowctl auth login`` asks (the same token here)."""
    return _token(request, body)


def _token(request: HttpRequest, body: LoginBody) -> Status[dict[str, str]]:
    user = authenticate(request, username=body.username, password=body.password)
    if user is None or not user.is_active:
        raise HttpError(401, "Invalid credentials")
    return Status(201, {"access_token": issue_token(user)})
