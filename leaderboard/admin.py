"""Read-only admin of the leaderboard read model: it changes only through events (or rebuild_leaderboard)."""
from django.contrib import admin

from config.readonly_admin import ReadOnlyAdmin
from leaderboard.models import ConsumedEvent, Standing


@admin.register(Standing)
class StandingAdmin(ReadOnlyAdmin):
    list_display = ["tournament_id", "player_id", "points", "played", "wins", "draws", "losses", "score_for",
                    "score_against"]
    search_fields = ["=tournament_id", "player_id"]


@admin.register(ConsumedEvent)
class ConsumedEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "aggregate_id", "aggregate_version", "tournament_id", "occurred_at", "applied_at"]
    list_filter = ["type"]
    search_fields = ["=tournament_id", "=message_id", "aggregate_id"]
