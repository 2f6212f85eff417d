"""Reads of the Score Engine."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from scores.ledger import ALIAS, LedgerState, StoredEvent, ledger_events, ledger_fold
from scores.models import Player


@dataclasses.dataclass(frozen=True)
class LedgerView:
    state: LedgerState
    events: list[StoredEvent]


def ledger_get(*, player_id: str, tournament_id: str, as_of: datetime | None = None,
               version: int | None = None) -> LedgerView | None:
    """Return a stream's state and events as of a time or version (default: now), or None if it had none yet.

    State and events come from one read, so they always agree.
    """
    events = ledger_events(tournament_id=str(tournament_id), player_id=player_id, as_of=as_of, version=version)
    if not events:
        return None
    state = ledger_fold(LedgerState(tournament_id=str(tournament_id), player_id=player_id), events)
    return LedgerView(state=state, events=events)


def player_get(*, player_id: str) -> Player:
    """Return the player (Player.DoesNotExist if unknown)."""
    return Player.objects.using(ALIAS).get(id=player_id)
