"""The three roles, as Django groups: Viewer reads, Operator also acts (trigger, clear, mark, pause,
Variables), Admin also manages users in the Django admin (/admin/).

A user's role is the highest group it is in (a superuser is an Admin); ``set_user_role`` puts a
user in exactly the groups of one role, so an admin picks one role, never a set of groups. An
Admin is in the Operator group too (everything an Operator may do, older checks included) and is
staff, so that the Django admin lets it in; the Admin group carries the permissions on users.
"""
from __future__ import annotations

from typing import Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission, User
from django.db import transaction

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
VIEWER_GROUP, OPERATOR_GROUP, ADMIN_GROUP = "Viewer", "Operator", "Admin"
GROUPS_OF_ROLE: dict[Role, tuple[str, ...]] = {
    "viewer": (VIEWER_GROUP,),
    "operator": (OPERATOR_GROUP,),
    "admin": (OPERATOR_GROUP, ADMIN_GROUP),
}
ROLE_GROUP_NAMES = (VIEWER_GROUP, OPERATOR_GROUP, ADMIN_GROUP)
# What the Django admin lets an Admin do: manage users (and see the roles and the audit log).
ADMIN_PERMISSIONS = (
    ("auth", "add_user"), ("auth", "change_user"), ("auth", "delete_user"), ("auth", "view_user"),
    ("auth", "view_group"), ("runs", "view_auditlog"),
)


def ensure_role_groups() -> dict[str, Group]:
    """The three groups, the Admin group with its permissions (idempotent)."""
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLE_GROUP_NAMES}
    wanted = Permission.objects.filter(
        content_type__app_label__in={app for app, _ in ADMIN_PERMISSIONS},
        codename__in=[code for _, code in ADMIN_PERMISSIONS])
    groups[ADMIN_GROUP].permissions.add(*wanted)
    return groups


def user_role(user: AbstractBaseUser | AnonymousUser) -> Role | None:
    """The user's role, None for an anonymous user. Reads the groups once per user object."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return "admin"
    cached: Role | None = user.__dict__.get("_role")
    if cached is None:
        names = set(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else set()
        cached = "admin" if ADMIN_GROUP in names else "operator" if OPERATOR_GROUP in names else "viewer"
        user.__dict__["_role"] = cached
    return cached


def set_user_role(user: User, role: Role) -> None:
    """Exactly the groups of ``role`` (other groups the user is in are kept); staff only as Admin."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    with transaction.atomic():
        groups = ensure_role_groups()
        user.groups.remove(*groups.values())
        user.groups.add(*(groups[name] for name in GROUPS_OF_ROLE[role]))
        if user.is_staff != (role == "admin" or user.is_superuser):
            user.is_staff = role == "admin" or user.is_superuser
            user.save(update_fields=["is_staff"])
    user.__dict__.pop("_role", None)
    user.__dict__.pop("_is_operator", None)
