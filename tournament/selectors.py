"""Reads of the Match Engine."""
from __future__ import annotations

import uuid

from django.db.models import QuerySet

from tournament.models import Match, Tournament


def match_get(*, tournament_id: uuid.UUID, match_id: uuid.UUID) -> Match | None:
    """Return the tournament's match, or None."""
    return Match.objects.using("tournament").filter(id=match_id, tournament_id=tournament_id).first()


def tournament_list(*, status: str | None = None) -> QuerySet[Tournament]:
    """Return tournaments, newest first, with their participants, optionally of one status."""
    tournaments = Tournament.objects.using("tournament").prefetch_related("participants")
    return tournaments.filter(status=status) if status else tournaments


def tournament_get(*, tournament_id) -> Tournament:
    """Return one tournament with its participants (Tournament.DoesNotExist if there is none)."""
    return tournament_list().get(id=tournament_id)
