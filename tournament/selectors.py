"""Reads of the Match Engine."""
from __future__ import annotations

import uuid

from tournament.models import Match


def match_get(*, tournament_id: uuid.UUID, match_id: uuid.UUID) -> Match | None:
    """Return the tournament's match, or None."""
    return Match.objects.using("tournament").filter(id=match_id, tournament_id=tournament_id).first()
