"""Public contracts of the Score Engine: the events of a score ledger stream.

Ledger events are stored in the Score Engine's event store; they are also what
other services (the leaderboard) may consume.
"""
from dataclasses import dataclass

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
class PointsAwardedV1(Event):
    """The first shape of PointsAwarded, kept because v1 rows are stored forever; read them as v2 (upcaster)."""

    TYPE = "scores.PointsAwarded"
    AGGREGATE_TYPE = LEDGER
    SCHEMA_VERSION = 1

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
