"""Read-only admin for tables that change only through services or events (logs, ledgers, outboxes, read models)."""
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Rows are never added, edited or deleted by hand; admin actions call services instead."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_per_page = 100
