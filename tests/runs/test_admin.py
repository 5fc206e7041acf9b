"""Users and roles: ``manage.py create_user``, the role on the Django admin's user page, and what
each role may do."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.roles import set_user_role, user_role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passphrase-42"


def admin_client() -> Client:
    client = Client()
    call_command("create_user", "boss", "--role", "admin", "--password", PASSWORD, stdout=io.StringIO())
    assert client.login(username="boss", password=PASSWORD)
    return client


class CreateUserTests:
    @pytest.mark.parametrize(("role", "groups", "staff"), [("viewer", ["Viewer"], False), ("operator", ["Operator"], False),
                                                            ("admin", ["Admin", "Operator"], True)])
    def test_it_creates_a_user_with_the_groups_of_its_role(self, role: str, groups: list[str], staff: bool) -> None:
        out = io.StringIO()
        call_command("create_user", "ann", "--role", role, "--password", PASSWORD, stdout=out)
        user = User.objects.get(username="ann")
        assert sorted(user.groups.values_list("name", flat=True)) == groups
        assert user.is_staff is staff and user.check_password(PASSWORD)
        assert user_role(user) == role
        assert out.getvalue() == f"Created user 'ann' with role {role}\n"

    def test_it_reads_the_password_from_stdin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        call_command("create_user", "ann", "--role", "viewer", "--password-stdin", stdout=io.StringIO())
        assert User.objects.get(username="ann").check_password(PASSWORD)

    def test_it_refuses_an_existing_user_unless_told_to_update_its_role(self) -> None:
        call_command("create_user", "ann", "--role", "viewer", "--password", PASSWORD, stdout=io.StringIO())
        with pytest.raises(CommandError, match="exists"):
            call_command("create_user", "ann", "--role", "admin", "--password", PASSWORD, stdout=io.StringIO())
        call_command("create_user", "ann", "--role", "operator", "--update", stdout=io.StringIO())
        user = User.objects.get(username="ann")
        assert user_role(user) == "operator" and user.check_password(PASSWORD)

    def test_it_refuses_a_weak_password_and_an_unknown_role(self) -> None:
        with pytest.raises(CommandError, match="Password refused"):
            call_command("create_user", "ann", "--role", "viewer", "--password", "123", stdout=io.StringIO())
        with pytest.raises(CommandError, match="invalid choice"):
            call_command("create_user", "ann", "--role", "root", "--password", PASSWORD, stdout=io.StringIO())
        assert not User.objects.exists()


class RoleInTheAdminTests:
    def test_it_lists_users_with_their_role_in_queries_that_do_not_grow_with_users(self) -> None:
        client = admin_client()
        for i in range(3):
            set_user_role(make_user(f"op{i}", None), "operator")
        make_user("just-viewer", "Viewer")
        with CaptureQueriesContext(connection) as few:
            html = client.get("/admin/auth/user/").content.decode()
        assert html.count('<td class="field-role">Operator</td>') == 3
        assert '<td class="field-role">Viewer</td>' in html and '<td class="field-role">Admin</td>' in html
        for i in range(3, 30):
            set_user_role(make_user(f"op{i}", None), "operator")
        with CaptureQueriesContext(connection) as many:
            html = client.get("/admin/auth/user/").content.decode()
        assert html.count('<td class="field-role">Operator</td>') == 30
        assert len(many.captured_queries) == len(few.captured_queries) <= 10

    def test_it_changes_a_users_role_from_one_choice(self) -> None:
        client = admin_client()
        ann = make_user("ann", "Viewer")
        page = client.get(f"/admin/auth/user/{ann.pk}/change/").content.decode()
        assert '<option value="viewer" selected>Viewer</option>' in page
        assert 'name="groups"' not in page and 'name="user_permissions"' not in page  # the role decides those
        form = {"username": "ann", "role": "operator", "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
                "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
        response = client.post(f"/admin/auth/user/{ann.pk}/change/", form)
        assert response.status_code == 302, response.content.decode()[:3000]
        ann = User.objects.get(pk=ann.pk)
        assert user_role(ann) == "operator" and list(ann.groups.values_list("name", flat=True)) == ["Operator"]

    def test_it_adds_a_user_with_a_role(self) -> None:
        client = admin_client()
        response = client.post("/admin/auth/user/add/", {"username": "new", "role": "admin", "password1": PASSWORD, "password2": PASSWORD,
                                                         "usable_password": "true"})
        assert response.status_code == 302, response.content.decode()[:3000]
        new = User.objects.get(username="new")
        assert user_role(new) == "admin" and new.is_staff

    def test_it_keeps_operators_and_viewers_out_of_the_admin(self) -> None:
        for role in ("viewer", "operator"):
            client = Client()
            user = make_user(f"u-{role}", None)
            set_user_role(user, role)  # type: ignore[arg-type]
            client.force_login(user)
            assert client.get("/admin/auth/user/").status_code == 302

    def test_it_gives_ensure_admins_user_the_admin_role(self) -> None:
        call_command("ensure_admin", stdout=io.StringIO())
        admin = User.objects.get(username="admin")
        assert user_role(admin) == "admin" and admin.is_staff
        assert Group.objects.get(name="Admin").permissions.filter(codename="change_user").exists()
