"""Admin of the Match Engine, read-only: tournaments change through their saga, results through `match_correct`."""
from django.contrib import admin

from config.readonly_admin import ReadOnlyAdmin
from tournament.models import Match, Participant, Tournament


@admin.register(Match)
class MatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "tournament", "player_a", "score_a", "score_b", "player_b", "version", "updated_at"]
    search_fields = ["=id", "=tournament__id", "player_a", "player_b"]


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ["player_id"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Tournament)
class TournamentAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "status", "version", "saga_id", "created_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["id", "name", "saga_id"]
    readonly_fields = ["id", "name", "status", "saga_id", "version", "cancel_reason", "created_at", "updated_at"]
    inlines = [ParticipantInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["player_id", "tournament"]
    list_select_related = ["tournament"]
    search_fields = ["player_id", "tournament__id", "tournament__name"]
    list_filter = ["tournament__status"]
    readonly_fields = ["tournament", "player_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
