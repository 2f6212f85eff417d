"""Business rules of the Score Engine: players, their ledgers opened and closed by the
create-tournament saga, and points from other services' events.

`ledger_score_matches` turns the Match Engine's result events into ledger
events: win 3, draw 1, loss 0; a correction revokes the points the match gave
and awards the new ones. It is safe under at-least-once, reordered delivery on
its own (the messaging framework also dedups and orders, this is the domain's
own guarantee): the `ScoredMatch` row of the match is locked while it is
scored and remembers the version scored, so a repeated or older version
changes nothing, and each event carries the whole result, so a newer version
arriving first is simply the result to score.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.raw_sql import pg_array, update_rows
from sagas.messages import Envelope, Event
from sagas.participant import StepRefused
from scores.ledger import (
    ALIAS,
    Change,
    LedgerState,
    LedgerStatus,
    VersionConflict,
    ledger_append,
    ledger_append_many,
    ledger_load,
    ledger_load_many,
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


def scored_matches_locked(matches: dict[str, str]) -> dict[str, ScoredMatch]:
    """Create (at version 0) or lock the ScoredMatch rows of `matches` (id: tournament) in one statement, in id order.

    The lock orders the events of one match: a concurrent duplicate waits, then sees the new version.
    """
    table = ScoredMatch._meta.db_table
    ids = sorted(matches)
    rows = ScoredMatch.objects.using(ALIAS).raw(
        f"INSERT INTO {table} (match_id, tournament_id, version, player_a, player_b, points_a, points_b, updated_at)"
        " SELECT k.match_id, k.tournament_id, 0, '', '', 0, 0, now()"
        " FROM unnest(%s::uuid[], %s::uuid[]) WITH ORDINALITY AS k(match_id, tournament_id, n) ORDER BY k.n"
        " ON CONFLICT (match_id) DO UPDATE SET match_id = EXCLUDED.match_id"
        f" RETURNING {', '.join(field.column for field in ScoredMatch._meta.concrete_fields)}",
        [pg_array(ids), pg_array(matches[match_id] for match_id in ids)])
    return {str(row.match_id): row for row in rows}


@dataclasses.dataclass(frozen=True)
class Scoring:
    """What one match event changes on one player's stream: the points to revoke (if scored before), to award."""

    envelope: Envelope
    player_id: str
    revoke: int | None
    award: int

    @property
    def stream(self) -> tuple[str, str]:
        return self.envelope.payload["tournament_id"], self.player_id

    def changes(self) -> list[Change]:
        common = {"tournament_id": self.envelope.payload["tournament_id"], "player_id": self.player_id,
                  "match_id": self.envelope.payload["match_id"]}
        events: list[Event] = []
        if self.revoke is not None:
            events.append(PointsRevoked(**common, points=self.revoke, reason="match corrected"))
        events.append(PointsAwarded(**common, points=self.award, reason=OUTCOMES[self.award]))
        return [Change(event, self.envelope.message_id, self.envelope.correlation_id) for event in events]


def _scorings(envelopes: list[Envelope], matches: dict[str, ScoredMatch]) -> list[Scoring]:
    """Return, in event order, the stream changes of the events that are news; move `matches` on accordingly."""
    scorings = []
    for envelope in envelopes:
        payload = envelope.payload
        match = matches[payload["match_id"]]
        if envelope.aggregate_version <= match.version:
            continue  # a repeated or superseded version of the result
        old_points = {match.player_a: match.points_a, match.player_b: match.points_b} if match.version else {}
        new_points = {payload["player_a"]: match_points(payload["score_a"], payload["score_b"]),
                      payload["player_b"]: match_points(payload["score_b"], payload["score_a"])}
        scorings += [Scoring(envelope, player_id, old_points.get(player_id), points)
                     for player_id, points in new_points.items()]
        match.version = envelope.aggregate_version
        match.player_a, match.player_b = payload["player_a"], payload["player_b"]
        match.points_a, match.points_b = new_points[payload["player_a"]], new_points[payload["player_b"]]
    return scorings


def _append_scorings(scorings: list[Scoring]) -> None:
    """Append the scorings to their streams; on a concurrent append, reload and append again.

    Only the appends of one attempt can conflict, all or nothing (see
    `ledger_append_many`), so a retry starts clean from the streams reloaded.
    """
    runs: dict[tuple[str, str], list[Change]] = defaultdict(list)
    for scoring in scorings:
        runs[scoring.stream].extend(scoring.changes())
    for _ in range(APPEND_ATTEMPTS):
        states = ledger_load_many(runs)
        closed = [f"{key[0]}/{key[1]} is {state.status}" for key, state in states.items()
                  if state.status != LedgerStatus.OPEN]
        if closed:
            raise LedgerNotOpen(f"cannot score on a ledger that is not open: {'; '.join(closed)}")
        try:
            ledger_append_many(appends=[(states[key], changes) for key, changes in runs.items()])
            return
        except VersionConflict:
            continue
    raise VersionConflict(f"{APPEND_ATTEMPTS} conflicting appends in a row on {len(runs)} ledgers")


@transaction.atomic(using=ALIAS)
def ledger_score_matches(*, envelopes: list[Envelope]) -> int:
    """Score MatchRecorded and MatchCorrected events, in order, on the players' ledgers; return how many were news.

    Win 3, draw 1, loss 0; a correction revokes the points the match gave and
    awards the new ones. Called at least once, in any order: idempotent per
    (match, version), with the same outcome as scoring the events one by one
    when it succeeds; one event that cannot be scored (LedgerNotOpen) fails the
    whole run, which the messaging framework then applies event by event.
    Statements do not grow with the number of events: the matches are locked
    in one, the streams loaded in two, events, outbox rows and snapshots
    written in one each.
    """
    matches = scored_matches_locked({envelope.payload["match_id"]: envelope.payload["tournament_id"]
                                     for envelope in envelopes})
    scorings = _scorings(envelopes, matches)
    if not scorings:
        return 0
    _append_scorings(scorings)
    changed = sorted({scoring.envelope.payload["match_id"] for scoring in scorings})
    now = timezone.now()
    for match_id in changed:
        matches[match_id].updated_at = now  # a bulk update does not apply auto_now
    update_rows([matches[match_id] for match_id in changed],
                ["version", "player_a", "player_b", "points_a", "points_b", "updated_at"], using=ALIAS)
    return len({scoring.envelope.message_id for scoring in scorings})


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
    with transaction.get_connection(ALIAS).prepared_cursor() as cursor:
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
                                 [Change(LedgerOpened(tournament_id=tournament_id, player_id=player_id),
                                         causation_id, correlation_id)])
                                for player_id in player_ids if not players[player_id][1]])


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
