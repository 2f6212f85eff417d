"""Business rules of the Match Engine: one transaction each, the outbox row inside it.

Every change to a Tournament row increments its `version` by exactly one and
publishes exactly one event with that version, so consumers see a gapless
sequence per tournament.
"""
from __future__ import annotations

import dataclasses
import uuid

from django.db import transaction

from sagas.definitions import CREATE_TOURNAMENT
from sagas.messages import Event
from sagas.orchestrator import request_fingerprint, saga_start
from sagas.outbox import publish
from sagas.participant import StepRefused
from tournament.messages import TournamentActivated, TournamentCancelled, TournamentCreated
from tournament.models import OutboxMessage, Participant, Tournament, TournamentStatus

ALIAS = "tournament"
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
