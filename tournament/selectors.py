"""Reads of the Match Engine."""
from django.db.models import QuerySet

from tournament.models import Tournament

ALIAS = "tournament"


def tournament_list(*, status: str | None = None) -> QuerySet[Tournament]:
    """Return tournaments, newest first, with their participants, optionally of one status."""
    tournaments = Tournament.objects.using(ALIAS).prefetch_related("participants")
    return tournaments.filter(status=status) if status else tournaments


def tournament_get(*, tournament_id) -> Tournament:
    """Return one tournament with its participants (Tournament.DoesNotExist if there is none)."""
    return tournament_list().get(id=tournament_id)
