"""The Django admin (/admin/): Admins manage users by role, and read the audit log.

The role is one choice (Viewer, Operator, Admin) on the user's page and a column of the list,
instead of Django's group and permission pickers: ``runs.roles.set_user_role`` turns it into the
groups (and the staff flag the admin itself wants). The audit log is read-only here as everywhere.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import User
from django.http import HttpRequest

from runs.models import AuditLog
from runs.roles import ROLES, set_user_role, user_role

admin.site.site_header = "dagsapp administration"
admin.site.site_title = "dagsapp admin"
admin.site.site_url = "/"

ROLE_CHOICES = [(r, r.capitalize()) for r in ROLES]
ROLE_HELP = ("Viewer: reads everything, acts on nothing. Operator: also triggers, clears, marks, pauses DAGs and "
             "edits Variables. Admin: also manages users here.")


class RoleFormMixin(forms.ModelForm):  # type: ignore[type-arg]
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", help_text=ROLE_HELP)


class RoleChangeForm(RoleFormMixin, UserChangeForm):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = user_role(self.instance)


class RoleCreationForm(RoleFormMixin, UserCreationForm):  # type: ignore[type-arg]
    pass


admin.site.unregister(User)


@admin.register(User)
class RoleUserAdmin(UserAdmin):  # type: ignore[type-arg]
    form = RoleChangeForm
    add_form = RoleCreationForm
    list_display = ("username", "role", "email", "is_active", "last_login")
    list_filter = ("is_active", "groups")
    # Groups, staff and permissions follow from the role; superuser stays for break-glass accounts.
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Role", {"fields": ("role",)}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active", "is_superuser", "last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "role", "password1", "password2")}),)
    readonly_fields = ("last_login", "date_joined")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Role")
    def role(self, user: User) -> str:
        if user.is_superuser:
            return "Admin"
        names = {g.name for g in user.groups.all()}  # prefetched: no query per row
        return "Admin" if "Admin" in names else "Operator" if "Operator" in names else "Viewer"

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        set_user_role(form.instance, form.cleaned_data["role"])


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("when", "owner", "event", "dag_id", "run_id", "task_id", "map_index", "count", "source", "remote_addr")
    list_filter = ("event", "source")
    search_fields = ("owner", "dag_id", "run_id", "task_id")
    date_hierarchy = "when"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
