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
