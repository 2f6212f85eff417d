"""Business rules of the Match Engine: one transaction each, the event written in it.

Every change publishes exactly one event to the Match Engine's outbox in the
same transaction, with the aggregate's version after the change, so consumers
see a gapless sequence per match and per tournament. Tournaments are created
by the create-tournament saga (`tournament_create` starts it; the saga's
steps call `tournament_create_pending`, `tournament_activate`, `tournament_cancel`).
"""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from django.db import connections, transaction

from config.raw_sql import pg_array
from sagas.definitions import CREATE_TOURNAMENT
from sagas.messages import Event
from sagas.orchestrator import request_fingerprint, saga_start
from sagas.outbox import publish
from sagas.participant import StepRefused
from tournament.messages import (
    MatchCorrected,
    MatchRecorded,
    TournamentActivated,
    TournamentCancelled,
    TournamentCompleted,
    TournamentCreated,
)
from tournament.models import (
    Match,
    OutboxMessage,
    Participant,
    Tournament,
    TournamentStatus,
)

ALIAS = "tournament"


class MatchEngineError(Exception):
    """A refusal of the Match Engine; the API maps each kind to a status code."""


class TournamentNotFound(MatchEngineError):
    pass


class MatchNotFound(MatchEngineError):
    pass


class TournamentNotActive(MatchEngineError):
    """Results are accepted only while the tournament is ACTIVE (PENDING is the saga's semantic lock)."""


class InvalidMatch(MatchEngineError):
    """The players are not two different participants of the tournament."""


class StaleVersion(MatchEngineError):
    """The match changed since the version the caller read (If-Match no longer holds)."""


def _lock_tournament_for_results(tournament_id: uuid.UUID | str, players: Sequence[str] = ()) -> set[str]:
    """Take a shared row lock on the ACTIVE tournament; return which of `players` are its participants.

    Why a row lock (FOR SHARE) and not an advisory lock: the rule guarded is
    "the tournament row says ACTIVE until this result commits", so the lock
    belongs on that row. FOR SHARE lets any number of results be recorded at
    once, yet conflicts with the FOR UPDATE of `tournament_complete` and with
    every status UPDATE (activate, cancel): completion waits for the results in
    flight, and a result arriving meanwhile waits, re-reads the row and sees
    COMPLETED. An advisory lock would need a key scheme every writer of the row
    must remember; the row lock is taken by the UPDATE anyway. The participant
    check rides in the same statement: one round trip less per result.
    """
    with connections[ALIAS].prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT t.status, ARRAY(SELECT p.player_id FROM {Participant._meta.db_table} p"
            f" WHERE p.tournament_id = t.id AND p.player_id = ANY(%s::varchar[]))"
            f" FROM {Tournament._meta.db_table} t WHERE t.id = %s FOR SHARE OF t",
            [pg_array(players), str(tournament_id)])
        row = cursor.fetchone()
    if row is None:
        raise TournamentNotFound(f"tournament {tournament_id} does not exist")
    if row[0] != TournamentStatus.ACTIVE:
        raise TournamentNotActive(f"tournament {tournament_id} is {row[0]}; results need an ACTIVE tournament")
    return set(row[1])


def _match_event_fields(match: Match) -> dict:
    return {"tournament_id": str(match.tournament_id), "match_id": str(match.id), "player_a": match.player_a,
            "player_b": match.player_b, "score_a": match.score_a, "score_b": match.score_b}


@transaction.atomic(using=ALIAS, durable=True)
def match_record(*, tournament_id: uuid.UUID | str, player_a: str, player_b: str, score_a: int, score_b: int,
                 correlation_id: str = "") -> Match:
    """Record a result of an ACTIVE tournament and publish MatchRecorded (version 1)."""
    if player_a == player_b:
        raise InvalidMatch("a match needs two different players")
    if score_a < 0 or score_b < 0:
        raise InvalidMatch("scores must be non-negative")
    entered = _lock_tournament_for_results(tournament_id, players=[player_a, player_b])
    outsiders = sorted({player_a, player_b} - entered)
    if outsiders:
        raise InvalidMatch(f"not participants of this tournament: {', '.join(outsiders)}")
    match = Match.objects.using(ALIAS).create(tournament_id=tournament_id, player_a=player_a, player_b=player_b,
                                              score_a=score_a, score_b=score_b)
    publish(MatchRecorded(**_match_event_fields(match)), outbox=OutboxMessage, aggregate_id=str(match.id),
            aggregate_version=match.version, correlation_id=correlation_id)
    return match


@transaction.atomic(using=ALIAS, durable=True)
def match_correct(*, tournament_id: uuid.UUID | str, match_id: uuid.UUID | str, expected_version: int, score_a: int,
                  score_b: int, correlation_id: str = "") -> Match:
    """Correct a result if it is still at `expected_version`; publish MatchCorrected with the new version.

    Optimistic concurrency: no lock is held while the caller thinks. The write
    is `UPDATE … WHERE id = %s AND version = n`; of two writers holding the same
    version one updates a row, the other (re-checking the WHERE after the first
    commits) updates none and gets StaleVersion.
    """
    if score_a < 0 or score_b < 0:
        raise InvalidMatch("scores must be non-negative")
    _lock_tournament_for_results(tournament_id)
    current = Match.objects.using(ALIAS).filter(id=match_id, tournament_id=tournament_id).first()
    if current is None:
        raise MatchNotFound(f"match {match_id} does not exist in tournament {tournament_id}")
    if current.version != expected_version:
        raise StaleVersion(f"match {match_id} is at version {current.version}, not {expected_version}")
    updated = Match.objects.using(ALIAS).filter(id=match_id, version=expected_version).update(
        score_a=score_a, score_b=score_b, version=expected_version + 1
    )
    if updated == 0:
        raise StaleVersion(f"match {match_id} changed after version {expected_version}")
    # The row read above was at `expected_version` and the UPDATE proved it still was: those are the old scores.
    previous_a, previous_b = current.score_a, current.score_b
    current.refresh_from_db(using=ALIAS)
    publish(MatchCorrected(**_match_event_fields(current), previous_score_a=previous_a, previous_score_b=previous_b),
            outbox=OutboxMessage, aggregate_id=str(current.id), aggregate_version=current.version,
            correlation_id=correlation_id)
    return current


@transaction.atomic(using=ALIAS, durable=True)
def tournament_complete(*, tournament_id: uuid.UUID | str, correlation_id: str = "") -> Tournament:
    """End an ACTIVE tournament (COMPLETED) and publish TournamentCompleted; later results are refused.

    FOR UPDATE on the tournament row waits for every result holding its FOR
    SHARE lock (see `_lock_tournament_for_results`), so no result commits after
    the completion does.
    """
    tournament = Tournament.objects.using(ALIAS).select_for_update().filter(id=tournament_id).first()
    if tournament is None:
        raise TournamentNotFound(f"tournament {tournament_id} does not exist")
    if tournament.status != TournamentStatus.ACTIVE:
        raise TournamentNotActive(f"tournament {tournament_id} is {tournament.status}; only an ACTIVE one completes")
    _change(tournament, TournamentCompleted(tournament_id=str(tournament.id)), correlation_id=correlation_id,
            causation_id="", status=TournamentStatus.COMPLETED)
    return tournament

NAME_MAX = 200
PARTICIPANTS_MIN, PARTICIPANTS_MAX = 2, 256


class TournamentInvalid(ValueError):
    """The request breaks a rule of tournament creation; the message says which, `field` where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class TournamentStarted:
    tournament_id: uuid.UUID
    saga_id: uuid.UUID
    created: bool


def tournament_validate(*, name: str, participants: list[str]) -> None:
    """Raise TournamentInvalid unless the name is 1-200 characters and there are 2-256 distinct participants."""
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        raise TournamentInvalid("name", f"name must be 1 to {NAME_MAX} characters")
    if len(set(participants)) != len(participants):
        duplicates = sorted({p for p in participants if participants.count(p) > 1})
        raise TournamentInvalid("participants", f"participants must be distinct; repeated: {', '.join(duplicates)}")
    if not PARTICIPANTS_MIN <= len(participants) <= PARTICIPANTS_MAX:
        raise TournamentInvalid(
            "participants", f"a tournament needs {PARTICIPANTS_MIN} to {PARTICIPANTS_MAX} participants, got {len(participants)}")


def tournament_create(*, name: str, participants: list[str], idempotency_key: str | None = None,
                      correlation_id: str = "") -> TournamentStarted:
    """Start the create-tournament saga; return the tournament's id, which already answers reads.

    Two schemas are written, never in one transaction: the saga log first,
    then (step 1, run inline) the PENDING tournament. A crash between them
    cannot strand anything: the committed saga row is re-driven by the
    watchdog, which creates the tournament; no tournament exists without a
    saga row driving it. The same `idempotency_key` with the same body
    returns the same tournament (and starts no second saga), with another
    body it raises `IdempotencyConflict`.
    """
    tournament_validate(name=name, participants=participants)
    started = saga_start(
        definition=CREATE_TOURNAMENT,
        payload={"tournament_id": str(uuid.uuid4()), "name": name, "participants": list(participants)},
        correlation_id=correlation_id, idempotency_key=idempotency_key,
        fingerprint=request_fingerprint({"name": name, "participants": list(participants)}),
        run_first_step_inline=True,
    )
    return TournamentStarted(tournament_id=uuid.UUID(started.saga.payload["tournament_id"]),
                             saga_id=started.saga.id, created=started.created)


def _change(tournament: Tournament, event: Event, *, correlation_id: str, causation_id: str, **fields) -> None:
    """Apply `fields`, bump the version by one and publish `event` with it, in the caller's transaction."""
    for field, value in fields.items():
        setattr(tournament, field, value)
    tournament.version += 1
    tournament.save(using=ALIAS, update_fields=[*fields, "version", "updated_at"])
    publish(event, outbox=OutboxMessage, aggregate_id=str(tournament.id), aggregate_version=tournament.version,
            correlation_id=correlation_id, causation_id=causation_id)


# Saga steps: these join the step's transaction (not durable, no savepoint of their
# own) so the participant's inbox row commits or rolls back together with their effect.

@transaction.atomic(using=ALIAS, savepoint=False)
def tournament_create_pending(*, tournament_id: str, name: str, participants: list[str], saga_id: str,
                              causation_id: str) -> Tournament:
    """Create the tournament PENDING (it accepts no results yet) with its participants; publish TournamentCreated."""
    tournament = Tournament.objects.using(ALIAS).create(id=tournament_id, name=name, saga_id=saga_id)
    Participant.objects.using(ALIAS).bulk_create(
        Participant(tournament=tournament, player_id=player_id) for player_id in participants)
    publish(TournamentCreated(tournament_id=str(tournament.id), name=name, participants=list(participants)),
            outbox=OutboxMessage, aggregate_id=str(tournament.id), aggregate_version=tournament.version,
            correlation_id=saga_id, causation_id=causation_id)
    return tournament


@transaction.atomic(using=ALIAS, savepoint=False)
def tournament_cancel(*, tournament_id: str, reason: str, correlation_id: str, causation_id: str) -> Tournament | None:
    """Cancel a PENDING or ACTIVE tournament with `reason`; a missing or already ended one is left as is."""
    tournament = Tournament.objects.using(ALIAS).select_for_update().filter(id=tournament_id).first()
    if tournament is None or tournament.status not in (TournamentStatus.PENDING, TournamentStatus.ACTIVE):
        return tournament
    _change(tournament, TournamentCancelled(tournament_id=str(tournament.id), reason=reason),
            correlation_id=correlation_id, causation_id=causation_id,
            status=TournamentStatus.CANCELLED, cancel_reason=reason)
    return tournament


@transaction.atomic(using=ALIAS, savepoint=False)
def tournament_activate(*, tournament_id: str, correlation_id: str, causation_id: str) -> Tournament:
    """Open a PENDING tournament for results; refuse if it is no longer PENDING."""
    tournament = Tournament.objects.using(ALIAS).select_for_update().get(id=tournament_id)
    if tournament.status != TournamentStatus.PENDING:
        raise StepRefused(f"tournament {tournament.id} is {tournament.status}, not PENDING")
    _change(tournament, TournamentActivated(tournament_id=str(tournament.id)),
            correlation_id=correlation_id, causation_id=causation_id, status=TournamentStatus.ACTIVE)
    return tournament
