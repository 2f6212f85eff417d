"""Public contracts of the Score Engine: the events of a score ledger stream.

Ledger events are stored in the Score Engine's event store; they are also what
other services (the leaderboard) may consume.
"""
from dataclasses import dataclass
from typing import ClassVar

from sagas.messages import Event

LEDGER = "scores.Ledger"


@dataclass(frozen=True)
class LedgerOpened(Event):
    TYPE = "scores.LedgerOpened"
    AGGREGATE_TYPE = LEDGER

    tournament_id: str
    player_id: str


@dataclass(frozen=True)
class LedgerClosed(Event):
    TYPE = "scores.LedgerClosed"
    AGGREGATE_TYPE = LEDGER

    tournament_id: str
    player_id: str
    reason: str


@dataclass(frozen=True)
class PointsAwardedV1:
    """The first shape of PointsAwarded (schema 1, no `reason`), no longer written.

    Kept because events are stored forever: rows in this shape load as
    PointsAwarded v2 through the upcaster in `scores.ledger`. Not an Event
    subclass, since one type string maps to one class that is published.
    """

    TYPE: ClassVar[str] = "scores.PointsAwarded"
    SCHEMA_VERSION: ClassVar[int] = 1

    tournament_id: str
    player_id: str
    match_id: str
    points: int


@dataclass(frozen=True)
class PointsAwarded(Event):
    """Points given for a match; v2 adds `reason` (win, draw, loss)."""

    TYPE = "scores.PointsAwarded"
    AGGREGATE_TYPE = LEDGER
    SCHEMA_VERSION = 2

    tournament_id: str
    player_id: str
    match_id: str
    points: int
    reason: str


@dataclass(frozen=True)
class PointsRevoked(Event):
    """Points taken back, e.g. because the match they were given for was corrected."""

    TYPE = "scores.PointsRevoked"
    AGGREGATE_TYPE = LEDGER

    tournament_id: str
    player_id: str
    match_id: str
    points: int
    reason: str
