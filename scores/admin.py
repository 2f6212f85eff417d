"""Admin of the Score Engine: players (suspend and lift call the service) and the ledger, read-only (append-only)."""
from django.contrib import admin, messages

from config.readonly_admin import ReadOnlyAdmin
from scores.models import LedgerEvent, LedgerSnapshot, Player, ScoredMatch
from scores.services import player_update


@admin.register(LedgerEvent)
class LedgerEventAdmin(ReadOnlyAdmin):
    list_display = ["tournament_id", "player_id", "version", "type", "schema_version", "recorded_at"]
    list_filter = ["type", "schema_version"]
    search_fields = ["=tournament_id", "player_id"]


@admin.register(LedgerSnapshot)
class LedgerSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["tournament_id", "player_id", "version", "schema", "recorded_at"]
    search_fields = ["=tournament_id", "player_id"]


@admin.register(ScoredMatch)
class ScoredMatchAdmin(ReadOnlyAdmin):
    list_display = ["match_id", "tournament_id", "version", "player_a", "points_a", "player_b", "points_b"]
    search_fields = ["=match_id", "=tournament_id"]


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
