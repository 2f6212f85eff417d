"""Players with their state; suspend and lift as actions that call the service."""
from django.contrib import admin, messages

from scores.models import Player
from scores.services import player_update


@admin.register(Player)
class PlayerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "suspended", "version", "created_at", "updated_at"]
    list_filter = ["suspended"]
    search_fields = ["id", "name"]
    readonly_fields = ["id", "name", "suspended", "version", "created_at", "updated_at"]
    actions = ["suspend", "lift_suspension"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _set_suspended(self, request, queryset, suspended: bool) -> None:
        for player in queryset:
            player_update(player_id=player.id, suspended=suspended)
        self.message_user(request, f"{'Suspended' if suspended else 'Lifted'} {queryset.count()} player(s).",
                          messages.SUCCESS)

    @admin.action(description="Suspend selected players", permissions=["change"])
    def suspend(self, request, queryset) -> None:
        self._set_suspended(request, queryset, True)

    @admin.action(description="Lift the suspension of selected players", permissions=["change"])
    def lift_suspension(self, request, queryset) -> None:
        self._set_suspended(request, queryset, False)
