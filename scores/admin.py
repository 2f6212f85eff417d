"""Admin of the score ledger: read-only, because an event store is append-only and changes through services."""
from django.contrib import admin

from config.readonly_admin import ReadOnlyAdmin
from scores.models import LedgerEvent, LedgerSnapshot, ScoredMatch


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
