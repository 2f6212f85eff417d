"""Admin of match results: read-only, because a correction must go through `match_correct` (If-Match and event)."""
from django.contrib import admin

from config.readonly_admin import ReadOnlyAdmin
from tournament.models import Match


@admin.register(Match)
class MatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "tournament", "player_a", "score_a", "score_b", "player_b", "version", "updated_at"]
    search_fields = ["=id", "=tournament__id", "player_a", "player_b"]
