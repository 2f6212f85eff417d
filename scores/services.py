"""Business rules of the Score Engine: players, their ledgers opened and closed by the
create-tournament saga, and points from other services' events.

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

from django.db import IntegrityError, transaction

from sagas.messages import Envelope, Event
from sagas.participant import StepRefused
from scores.ledger import (
    ALIAS,
    LedgerState,
    LedgerStatus,
    VersionConflict,
    ledger_append,
    ledger_append_many,
    ledger_load,
)
from scores.messages import LedgerClosed, LedgerOpened, PointsAwarded, PointsRevoked
from scores.models import LedgerEvent, Player, ScoredMatch
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


class PlayerExists(Exception):
    """A player with this id is already registered."""


@transaction.atomic(using=ALIAS, durable=True)
def player_register(*, player_id: str, name: str) -> Player:
    """Register a player (not suspended); raise PlayerExists if the id is taken."""
    try:
        with transaction.atomic(using=ALIAS):
            return Player.objects.using(ALIAS).create(id=player_id, name=name)
    except IntegrityError as exc:
        raise PlayerExists(f"player {player_id!r} already exists") from exc


@transaction.atomic(using=ALIAS, durable=True)
def player_update(*, player_id: str, suspended: bool) -> Player:
    """Suspend a player or lift the suspension (Player.DoesNotExist if unknown); the version moves on a change."""
    player = Player.objects.using(ALIAS).select_for_update().get(id=player_id)
    if player.suspended != suspended:
        player.suspended = suspended
        player.version += 1
        player.save(using=ALIAS, update_fields=["suspended", "version", "updated_at"])
    return player


# Saga steps: these join the step's transaction (not durable, no savepoint of their
# own) so the participant's inbox row commits or rolls back together with their effect.

@transaction.atomic(using=ALIAS, savepoint=False)
def ledgers_open(*, tournament_id: str, player_ids: list[str], causation_id: str, correlation_id: str = "") -> None:
    """Open a ledger (a LedgerOpened event) for each player; refuse unknown or suspended players.

    The players are share-locked until commit: a suspension (an UPDATE) cannot
    slip in between the check and the open, while sagas sharing players do not
    wait for each other (FOR SHARE, which the ORM cannot express). The same
    statement tells which streams already have events: opening is idempotent per stream.
    """
    with transaction.get_connection(ALIAS).cursor() as cursor:
        cursor.execute(
            f"SELECT p.id, p.suspended, EXISTS (SELECT 1 FROM {LedgerEvent._meta.db_table} e"
            "  WHERE e.tournament_id = %s AND e.player_id = p.id)"
            f" FROM {Player._meta.db_table} p WHERE p.id = ANY(%s) FOR SHARE OF p",
            [tournament_id, list(player_ids)])
        players = {player_id: (suspended, started) for player_id, suspended, started in cursor.fetchall()}
    problems = [f"unknown player {player_id!r}" for player_id in player_ids if player_id not in players]
    problems += [f"player {player_id!r} is suspended" for player_id in player_ids
                 if player_id in players and players[player_id][0]]
    if problems:
        raise StepRefused("; ".join(problems))
    # A stream with events is open (or was closed). The LedgerOpened events are appended,
    # and published (the leaderboard reads them), in one go.
    ledger_append_many(appends=[(LedgerState(tournament_id=tournament_id, player_id=player_id),
                                 LedgerOpened(tournament_id=tournament_id, player_id=player_id))
                                for player_id in player_ids if not players[player_id][1]],
                       causation_id=causation_id, correlation_id=correlation_id)


@transaction.atomic(using=ALIAS, savepoint=False)
def ledgers_close(*, tournament_id: str, opened_by: str, reason: str, causation_id: str,
                  correlation_id: str = "") -> None:
    """Close the still-open ledgers of `tournament_id` that the message `opened_by` opened."""
    player_ids = LedgerEvent.objects.using(ALIAS).filter(
        tournament_id=tournament_id, type=LedgerOpened.TYPE, causation_id=opened_by).values_list("player_id", flat=True)
    for player_id in player_ids:
        state = ledger_load(tournament_id=tournament_id, player_id=player_id)
        if state.status == LedgerStatus.OPEN:
            ledger_append(state=state, causation_id=causation_id, correlation_id=correlation_id,
                          event=LedgerClosed(tournament_id=tournament_id, player_id=player_id, reason=reason))
