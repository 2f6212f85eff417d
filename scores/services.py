"""Business rules of the Score Engine that react to other services' events.

`ledger_score_match` turns the Match Engine's result events into ledger
events: win 3, draw 1, loss 0; a correction revokes the points the match gave
and awards the new ones. It is safe under at-least-once, reordered delivery on
its own (the messaging framework also dedups and orders, this is the domain's
own guarantee): the `ScoredMatch` row of the match is locked while it is
scored and remembers the version scored, so a repeated or older version
changes nothing, and each event carries the whole result, so a newer version
arriving first is simply the result to score.
"""
from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from sagas.messages import Envelope, Event
from scores.ledger import ALIAS, LedgerState, LedgerStatus, VersionConflict, ledger_append, ledger_load
from scores.messages import PointsAwarded, PointsRevoked
from scores.models import ScoredMatch
from tournament.messages import MatchCorrected, MatchRecorded

WIN, DRAW, LOSS = 3, 1, 0
OUTCOMES = {WIN: "win", DRAW: "draw", LOSS: "loss"}
MATCH_EVENTS = (MatchRecorded.TYPE, MatchCorrected.TYPE)
APPEND_ATTEMPTS = 10


class LedgerNotOpen(Exception):
    """Points for a stream that is not OPEN: the event contradicts the ledger (a poison message)."""


def match_points(score_for: int, score_against: int) -> int:
    """Return the points a result gives the player who scored `score_for`."""
    if score_for > score_against:
        return WIN
    return DRAW if score_for == score_against else LOSS


def ledger_append_with_retry(*, tournament_id: str, player_id: str,
                             decide: Callable[[LedgerState], list[Event]], causation_id: str = "",
                             correlation_id: str = "") -> LedgerState:
    """Load the stream, append the events `decide` returns for that state; on a conflict reload and decide again.

    Runs in the caller's transaction. Only the first append of an attempt can
    conflict: once it holds version n+1 (uncommitted), no other writer can
    append n+2, since none can see n+1. So a conflict leaves nothing
    half-appended (the conflicting insert wrote nothing) and the retry is clean.
    """
    for _ in range(APPEND_ATTEMPTS):
        state = ledger_load(tournament_id=tournament_id, player_id=player_id)
        events = decide(state)
        try:
            state = ledger_append(state=state, event=events[0], causation_id=causation_id,
                                  correlation_id=correlation_id)
        except VersionConflict:
            continue
        for event in events[1:]:
            state = ledger_append(state=state, event=event, causation_id=causation_id, correlation_id=correlation_id)
        return state
    raise VersionConflict(f"ledger {tournament_id}/{player_id}: {APPEND_ATTEMPTS} conflicting appends in a row")


def points_changes(*, match: ScoredMatch, player_id: str, old_points: int | None, new_points: int) -> Callable:
    """Return a `decide` for one player's stream: revoke the match's old points (if scored), award the new."""
    def decide(state: LedgerState) -> list[Event]:
        if state.status != LedgerStatus.OPEN:
            raise LedgerNotOpen(f"ledger {state.tournament_id}/{player_id} is {state.status}; "
                                f"cannot score match {match.match_id}")
        common = {"tournament_id": state.tournament_id, "player_id": player_id, "match_id": str(match.match_id)}
        events: list[Event] = []
        if old_points is not None:
            events.append(PointsRevoked(**common, points=old_points, reason="match corrected"))
        events.append(PointsAwarded(**common, points=new_points, reason=OUTCOMES[new_points]))
        return events
    return decide


def scored_match_locked(*, match_id: str, tournament_id: str) -> ScoredMatch:
    """Create (at version 0) or lock the match's ScoredMatch row in one statement; return it locked."""
    table = ScoredMatch._meta.db_table
    return ScoredMatch.objects.using(ALIAS).raw(
        f"INSERT INTO {table} (match_id, tournament_id, version, player_a, player_b, points_a, points_b, updated_at)"
        " VALUES (%s, %s, 0, '', '', 0, 0, now()) ON CONFLICT (match_id) DO UPDATE SET match_id = EXCLUDED.match_id"
        f" RETURNING {', '.join(field.column for field in ScoredMatch._meta.concrete_fields)}",
        [match_id, tournament_id])[0]


@transaction.atomic(using=ALIAS)
def ledger_score_match(*, envelope: Envelope) -> bool:
    """Score a MatchRecorded or MatchCorrected on both players' ledgers; return False when it changed nothing.

    Called at least once, in any order: idempotent per (match, version).
    """
    payload = envelope.payload
    # The lock orders the events of one match; a concurrent duplicate waits here, then sees the new version.
    match = scored_match_locked(match_id=payload["match_id"], tournament_id=payload["tournament_id"])
    if envelope.aggregate_version <= match.version:
        return False
    scored_before = match.version > 0
    new_points = {payload["player_a"]: match_points(payload["score_a"], payload["score_b"]),
                  payload["player_b"]: match_points(payload["score_b"], payload["score_a"])}
    old_points = {match.player_a: match.points_a, match.player_b: match.points_b} if scored_before else {}
    # Streams in a fixed order: two matches of the same players never wait on each other in opposite orders.
    for player_id in sorted(new_points):
        ledger_append_with_retry(
            tournament_id=payload["tournament_id"], player_id=player_id,
            decide=points_changes(match=match, player_id=player_id, old_points=old_points.get(player_id),
                                  new_points=new_points[player_id]),
            causation_id=envelope.message_id, correlation_id=envelope.correlation_id,
        )
    match.version = envelope.aggregate_version
    match.player_a, match.player_b = payload["player_a"], payload["player_b"]
    match.points_a, match.points_b = new_points[payload["player_a"]], new_points[payload["player_b"]]
    match.save(using=ALIAS)
    return True
