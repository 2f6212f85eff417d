"""The event-sourced score ledger: one append-only stream per (tournament, player).

State is never stored, only derived: `ledger_load` folds the stream's events
through `FOLDS`. Appending checks the expected version; the unique
(stream, version) constraint turns a concurrent append into a conflict.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from sagas.messages import Event
from scores.messages import LedgerClosed, LedgerOpened
from scores.models import LedgerEvent

ALIAS = "scores"


class LedgerStatus:
    NONE = "NONE"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class VersionConflict(Exception):
    """Another writer appended to the stream first; reload and retry."""


@dataclasses.dataclass(frozen=True)
class LedgerState:
    tournament_id: str
    player_id: str
    status: str = LedgerStatus.NONE
    points: int = 0
    version: int = 0


Fold = Callable[[LedgerState, dict], LedgerState]

FOLDS: dict[str, Fold] = {
    LedgerOpened.TYPE: lambda state, payload: dataclasses.replace(state, status=LedgerStatus.OPEN),
    LedgerClosed.TYPE: lambda state, payload: dataclasses.replace(state, status=LedgerStatus.CLOSED),
}


def ledger_fold(state: LedgerState, events: Iterable[LedgerEvent]) -> LedgerState:
    """Apply stored events, in version order, to `state`."""
    for event in events:
        state = FOLDS[event.type](state, event.payload)
        state = dataclasses.replace(state, version=event.version)
    return state


def ledger_load(*, tournament_id: str, player_id: str, as_of: datetime | None = None) -> LedgerState:
    """Return the stream's state now, or as it was at `as_of`, by replaying its events."""
    events = LedgerEvent.objects.using(ALIAS).filter(tournament_id=tournament_id, player_id=player_id)
    if as_of is not None:
        events = events.filter(recorded_at__lte=as_of)
    return ledger_fold(LedgerState(tournament_id=str(tournament_id), player_id=player_id), events.order_by("version"))


def ledger_append(*, state: LedgerState, event: Event, causation_id: str = "") -> LedgerState:
    """Append `event` after `state.version`; raise VersionConflict if the stream moved on.

    Must run inside the caller's transaction on the `scores` alias; the savepoint
    keeps that transaction usable after a conflict.
    """
    version = state.version + 1
    try:
        with transaction.atomic(using=ALIAS):
            stored = LedgerEvent.objects.using(ALIAS).create(
                tournament_id=state.tournament_id, player_id=state.player_id, version=version, type=event.TYPE,
                schema_version=event.SCHEMA_VERSION, payload=event.to_payload(), causation_id=causation_id,
                recorded_at=timezone.now(),
            )
    except IntegrityError as exc:
        raise VersionConflict(f"ledger {state.tournament_id}/{state.player_id} already has v{version}") from exc
    return ledger_fold(state, [stored])
