"""Public contracts of the Match Engine: the events it publishes.

Tournament events carry `aggregate_version` = the tournament's `version` after
the change: every change bumps the version by one and publishes exactly one
event, so consumers see a gapless sequence per tournament. Match events do
the same per match.
"""
from dataclasses import dataclass

from sagas.messages import Event

TOURNAMENT = "tournament.Tournament"
MATCH = "tournament.Match"


@dataclass(frozen=True)
class TournamentCreated(Event):
    TYPE = "tournament.TournamentCreated"
    AGGREGATE_TYPE = TOURNAMENT

    tournament_id: str
    name: str
    participants: list[str]


@dataclass(frozen=True)
class TournamentActivated(Event):
    TYPE = "tournament.TournamentActivated"
    AGGREGATE_TYPE = TOURNAMENT

    tournament_id: str


@dataclass(frozen=True)
class TournamentCancelled(Event):
    TYPE = "tournament.TournamentCancelled"
    AGGREGATE_TYPE = TOURNAMENT

    tournament_id: str
    reason: str


@dataclass(frozen=True)
class TournamentCompleted(Event):
    TYPE = "tournament.TournamentCompleted"
    AGGREGATE_TYPE = TOURNAMENT

    tournament_id: str


@dataclass(frozen=True)
class MatchRecorded(Event):
    TYPE = "tournament.MatchRecorded"
    AGGREGATE_TYPE = MATCH

    tournament_id: str
    match_id: str
    player_a: str
    player_b: str
    score_a: int
    score_b: int


@dataclass(frozen=True)
class MatchCorrected(Event):
    TYPE = "tournament.MatchCorrected"
    AGGREGATE_TYPE = MATCH

    tournament_id: str
    match_id: str
    player_a: str
    player_b: str
    score_a: int
    score_b: int
    previous_score_a: int
    previous_score_b: int
