"""The saga orchestrator: starts sagas, records their steps, decides what runs next.

The saga log (`Saga`, `SagaStepAttempt`) is the truth; the broker only carries
the next step. Every change of a saga row is a conditional update on its
`version` (`_advance`): of two workers racing to move one saga, exactly one
wins and the other stops its chain. Whatever the broker loses (a crashed
worker, a flushed Redis, a dropped errback), `sagas_recover` finds from the
log and sends again; the participants' inboxes make the repeat harmless.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import chain
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from config.celery import app
from sagas.definitions import SagaDefinition, definition_get
from sagas.models import (
    RUNNING_STATES,
    Saga,
    SagaState,
    SagaStepAttempt,
    StepKind,
    StepStatus,
)

logger = logging.getLogger(__name__)

ALIAS = "sagas"
STEP_FAILED_TASK = "sagas.step_failed"


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different request."""


class SagaStateError(Exception):
    """The operation does not apply to the saga in its current state."""


@dataclasses.dataclass(frozen=True)
class StartedSaga:
    saga: Saga
    created: bool


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What a step runner holds between `attempt_begin` and `attempt_finish`."""

    id: int
    saga_version: int


# SETTINGS ------------------------------------------------------------------------------------------------------


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name)))


def retry_countdown(retries: int) -> float:
    """Return the wait before retry number `retries + 1`: exponential backoff with full jitter."""
    ceiling = min(float(settings.SAGAS_RETRY_BACKOFF_MAX), float(settings.SAGAS_RETRY_BACKOFF) * 2**retries)
    return random.uniform(0, ceiling)


def request_fingerprint(body: Any) -> str:
    """Return a stable digest of a request body, to tell a retried request from a different one."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# STARTING ------------------------------------------------------------------------------------------------------


def saga_start(*, definition: SagaDefinition, payload: dict[str, Any], correlation_id: str = "",
               idempotency_key: str | None = None, fingerprint: str = "",
               run_first_step_inline: bool = False) -> StartedSaga:
    """Start a saga (or return the one already started with `idempotency_key`) and send its first step.

    The saga row commits before any participant is touched, so a crash right
    after it leaves a STARTED saga at step 0 that the watchdog re-drives once
    `stalled_after` passes: no participant effect can exist without a saga
    driving it. With `run_first_step_inline` the caller's process runs step 0
    itself (the same idempotent runner the workers use), so its effect is
    visible when this returns; a repeated request runs it again, harmlessly,
    to give the same guarantee.
    """
    started = _saga_create(definition=definition, payload=payload, correlation_id=correlation_id,
                           idempotency_key=idempotency_key, fingerprint=fingerprint)
    saga = started.saga
    if run_first_step_inline:
        from sagas.participant import step_run_inline  # the runner imports this module

        if saga.state == SagaState.STARTED and saga.current_step == 0:
            if step_run_inline(task_name=definition.steps[0].action, command=step_command(saga, 0, StepKind.ACTION)):
                saga.current_step = 1  # what this run's conditional update just recorded
                saga_dispatch(saga)
    elif started.created:
        saga_dispatch(saga)
    return started


@transaction.atomic(using=ALIAS, durable=True)
def _saga_create(*, definition: SagaDefinition, payload: dict[str, Any], correlation_id: str,
                 idempotency_key: str | None, fingerprint: str) -> StartedSaga:
    now = timezone.now()
    saga_id = uuid.uuid4()
    # With no caller's correlation id (a request id, say), the saga's own id correlates its messages.
    fields = dict(id=saga_id, payload=payload, correlation_id=correlation_id or str(saga_id),
                  request_fingerprint=fingerprint,
                  deadline=now + _seconds("SAGAS_DEADLINE"), stalled_after=now + _seconds("SAGAS_STEP_TIMEOUT"))
    if idempotency_key is None:
        return StartedSaga(Saga.objects.using(ALIAS).create(type=definition.name, **fields), created=True)
    # Concurrent requests with one key: the unique constraint lets one insert win;
    # the others wait for its commit, then read its saga.
    try:
        with transaction.atomic(using=ALIAS):
            saga = Saga.objects.using(ALIAS).create(type=definition.name, idempotency_key=idempotency_key, **fields)
            return StartedSaga(saga, created=True)
    except IntegrityError:
        saga = Saga.objects.using(ALIAS).get(type=definition.name, idempotency_key=idempotency_key)
    if saga.request_fingerprint != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different request body.")
    return StartedSaga(saga, created=False)


# DISPATCHING ---------------------------------------------------------------------------------------------------


def step_message_id(saga_id: uuid.UUID | str, step: int, kind: str) -> uuid.UUID:
    """Return the idempotency key of one step's action or compensation: the same on every delivery."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"saga:{saga_id}:{step}:{kind}")


def step_command(saga: Saga, step: int, kind: str) -> dict[str, Any]:
    """Return the keyword arguments a step task receives (JSON only)."""
    return {"saga_id": str(saga.id), "saga_type": saga.type, "step": step, "kind": kind,
            "payload": saga.payload, "correlation_id": saga.correlation_id,
            "reason": saga.reason if kind == StepKind.COMPENSATION else ""}


def _signature(saga: Saga, step: int, kind: str, task_name: str, queue: str):
    # The errback is a task sent as a message (a one-argument task: Celery sends
    # those rather than calling them inline in the failing worker), and it only
    # asks the log to decide; if it is lost, the watchdog decides instead.
    errback = app.signature(STEP_FAILED_TASK, kwargs={"saga_id": str(saga.id), "step": step, "kind": kind},
                            queue=ALIAS)
    return app.signature(task_name, kwargs=step_command(saga, step, kind), queue=queue, immutable=True,
                         link_error=[errback])


def compensable_steps(definition: SagaDefinition, from_step: int) -> list[int]:
    """Return the steps to compensate, in reverse order, starting at `from_step`."""
    return [index for index in range(min(from_step, len(definition.steps) - 1), -1, -1)
            if definition.steps[index].compensation]


def saga_dispatch(saga: Saga) -> None:
    """Send the rest of the saga's work as one Celery chain, from where the log says it is."""
    definition = definition_get(saga.type)
    if saga.state == SagaState.STARTED:
        signatures = [_signature(saga, index, StepKind.ACTION, step.action, step.queue)
                      for index, step in enumerate(definition.steps) if index >= saga.current_step]
    elif saga.state == SagaState.COMPENSATING:
        signatures = [_signature(saga, index, StepKind.COMPENSATION, definition.steps[index].compensation,
                                 definition.steps[index].queue)
                      for index in compensable_steps(definition, saga.current_step)]
    else:
        return
    if signatures:
        chain(*signatures).apply_async()


def _dispatch_on_commit(saga_id: uuid.UUID) -> None:
    def send() -> None:
        saga_dispatch(Saga.objects.using(ALIAS).get(id=saga_id))

    transaction.on_commit(send, using=ALIAS)


# RECORDING STEPS (called by the step runner in the participant's worker) --------------------------------------


def _expected_state(kind: str) -> str:
    return SagaState.STARTED if kind == StepKind.ACTION else SagaState.COMPENSATING


# The two statements every step runs are written as one SQL statement each (a CTE):
# they are the engine's hot path, and a round trip costs more than the work.
_ATTEMPT_BEGIN_SQL = """
WITH saga AS (
    SELECT id, version, (state = %(state)s AND current_step = %(step)s) AS current,
           'ignored: the saga is ' || state || ' at step ' || current_step AS ignored
    FROM sagas_saga WHERE id = %(saga_id)s
), attempt AS (
    INSERT INTO sagas_sagastepattempt
        (saga_id, step, name, kind, status, attempt, task_id, worker, started_at, finished_at, error)
    SELECT id, %(step)s, %(name)s, %(kind)s, CASE WHEN current THEN 'RUNNING' ELSE 'SKIPPED' END, %(attempt)s,
           %(task_id)s, %(worker)s, %(now)s, CASE WHEN current THEN NULL ELSE %(now)s END,
           CASE WHEN current THEN '' ELSE ignored END
    FROM saga
    RETURNING id, status
)
SELECT attempt.id, attempt.status, saga.version FROM attempt, saga
"""


def attempt_begin(*, saga_id: str, saga_type: str, step: int, kind: str, task_id: str, worker: str,
                  attempt: int) -> Attempt | None:
    """Record an attempt at a step; return None when the log has moved on (a stale or duplicate message).

    A stale delivery is recorded too (SKIPPED), so a duplicate is visible, and
    visibly ignored. The row is a record, not a decision: the decision is
    `attempt_succeeded`'s conditional update.
    """
    params = {"saga_id": saga_id, "state": _expected_state(kind), "step": step, "kind": kind, "attempt": attempt,
              "name": definition_get(saga_type).steps[step].name, "task_id": task_id or "", "worker": worker or "",
              "now": timezone.now()}
    with connections[ALIAS].prepared_cursor() as cursor:
        cursor.execute(_ATTEMPT_BEGIN_SQL, params)
        row = cursor.fetchone()
    if row is None or row[1] != StepStatus.RUNNING:
        return None
    return Attempt(id=row[0], saga_version=row[2])


def attempt_finish(*, attempt_id: int, status: str, error: str = "") -> None:
    """Close an attempt row (outside the saga's own state machine: it never moves the saga)."""
    SagaStepAttempt.objects.using(ALIAS).filter(id=attempt_id).update(
        status=status, error=error[:4000], finished_at=timezone.now())


def attempt_retrying(*, saga_id: str, countdown: float) -> None:
    """Keep the watchdog off a step that waits `countdown` seconds to retry (a heartbeat, not a state change)."""
    Saga.objects.using(ALIAS).filter(id=saga_id).update(
        stalled_after=timezone.now() + timedelta(seconds=countdown) + _seconds("SAGAS_STEP_TIMEOUT"))


_ATTEMPT_SUCCEEDED_SQL = """
WITH moved AS (
    UPDATE sagas_saga
    SET version = version + 1, updated_at = %(now)s, stalled_after = %(stalled_after)s,
        state = %(next_state)s, current_step = %(next_step)s, finished_at = %(finished_at)s
    WHERE id = %(saga_id)s AND version = %(version)s AND state = %(state)s AND current_step = %(step)s
    RETURNING id
), closed AS (
    UPDATE sagas_sagastepattempt
    SET finished_at = %(now)s,
        status = CASE WHEN id = %(attempt_id)s THEN %(status)s ELSE 'FAILED' END,
        error = CASE WHEN id = %(attempt_id)s THEN '' ELSE 'no outcome reported (worker lost?)' END
    WHERE id = %(attempt_id)s
       OR (EXISTS (SELECT 1 FROM moved)
           AND saga_id = %(saga_id)s AND step = %(step)s AND kind = %(kind)s AND status = 'RUNNING')
)
SELECT count(*) FROM moved
"""


def _position_after(definition: SagaDefinition, step: int, kind: str) -> tuple[str, int]:
    """Return the (state, current step) a saga moves to when `step`'s action or compensation is done."""
    if kind == StepKind.ACTION:
        if step + 1 < len(definition.steps):
            return SagaState.STARTED, step + 1
        return SagaState.COMPLETED, step
    remaining = compensable_steps(definition, step - 1) if step > 0 else []
    if remaining:
        return SagaState.COMPENSATING, remaining[0]
    return SagaState.COMPENSATED, step


def step_awaits_next(*, saga_id: str, saga_type: str, step: int, kind: str) -> bool:
    """Return whether the saga stands, still running, where `step`'s action or compensation leads.

    For a delivery that did the step but lost the conditional update to a
    duplicate: the winner may carry no chain (a message sent again on its
    own), so the loser keeps its chain going rather than leave the saga to the
    watchdog. The next step may then arrive twice; its inbox makes that harmless.
    """
    state, next_step = _position_after(definition_get(saga_type), step, kind)
    return state in RUNNING_STATES and Saga.objects.using(ALIAS).filter(
        id=saga_id, state=state, current_step=next_step).exists()


def attempt_succeeded(*, saga_id: str, saga_type: str, step: int, kind: str, attempt: Attempt, status: str) -> bool:
    """Record the step done and move the saga on; return False if another runner already did.

    One statement: the conditional update on the saga's version decides; with
    it, the attempt is closed, and so are attempts of this step still RUNNING
    if the saga moved on (their worker died, or they will find the log moved).
    """
    now = timezone.now()
    next_state, next_step = _position_after(definition_get(saga_type), step, kind)
    finished_at = None if next_state in RUNNING_STATES else now
    params = {"saga_id": saga_id, "version": attempt.saga_version, "state": _expected_state(kind), "step": step,
              "kind": kind, "attempt_id": attempt.id, "status": status, "now": now, "next_state": next_state,
              "next_step": next_step, "finished_at": finished_at,
              "stalled_after": now + _seconds("SAGAS_STEP_TIMEOUT")}
    with connections[ALIAS].prepared_cursor() as cursor:
        cursor.execute(_ATTEMPT_SUCCEEDED_SQL, params)
        return cursor.fetchone()[0] == 1


def _advance(saga_id: str | uuid.UUID, *, expected_version: int, in_state: str | None = None,
             at_step: int | None = None, **changes: Any) -> bool:
    """Apply `changes` only if the saga is still at `expected_version` (and state/step); return whether it was."""
    conditions: dict[str, Any] = {"id": saga_id, "version": expected_version}
    if in_state is not None:
        conditions["state"] = in_state
    if at_step is not None:
        conditions["current_step"] = at_step
    changes.setdefault("stalled_after", timezone.now() + _seconds("SAGAS_STEP_TIMEOUT"))
    return bool(Saga.objects.using(ALIAS).filter(**conditions).update(
        version=F("version") + 1, updated_at=timezone.now(), **changes))


# FAILING AND COMPENSATING ---------------------------------------------------------------------------------------


def _last_error(saga_id: str, step: int, kind: str) -> str:
    last = (SagaStepAttempt.objects.using(ALIAS).filter(saga_id=saga_id, step=step, kind=kind)
            .exclude(error="").order_by("-started_at", "-id").first())
    return last.error if last else ""


@transaction.atomic(using=ALIAS, durable=True)
def step_failure(*, saga_id: str, step: int, kind: str) -> str | None:
    """Decide what a failed step means for its saga; return the new state, or None if it had moved on.

    Called at least once (by the errback task, maybe twice): only the first
    call for a step that is still current changes anything.
    """
    saga = Saga.objects.using(ALIAS).filter(id=saga_id).first()
    if saga is None or saga.state != _expected_state(kind) or saga.current_step != step:
        return None
    step_name = definition_get(saga.type).steps[step].name
    error = _last_error(saga_id, step, kind) or "the step failed"
    if kind == StepKind.ACTION:
        return _compensation_begin(saga, reason=error) and SagaState.COMPENSATING
    if _advance(saga.id, expected_version=saga.version, state=SagaState.FAILED, finished_at=timezone.now(),
                error=f"compensation of {step_name} failed: {error}"):
        logger.error("saga %s FAILED: compensation of %s keeps failing: %s", saga.id, step_name, error)
        return SagaState.FAILED
    return None


def _compensation_begin(saga: Saga, *, reason: str) -> bool:
    """Turn a STARTED (or FAILED) saga to compensating, from its current step down; send it after commit.

    The current step is compensated too: its action may have committed just
    before a crash or a deadline, and a compensation of nothing is a no-op
    that also fences off a late delivery of that action (see `participant`).
    """
    remaining = compensable_steps(definition_get(saga.type), saga.current_step)
    if not remaining:
        return _advance(saga.id, expected_version=saga.version, state=SagaState.COMPENSATED, reason=reason,
                        error=reason, finished_at=timezone.now())
    moved = _advance(saga.id, expected_version=saga.version, state=SagaState.COMPENSATING,
                     current_step=remaining[0], reason=reason, error=reason)
    if moved:
        _dispatch_on_commit(saga.id)
    return moved


# OPERATORS AND THE WATCHDOG ------------------------------------------------------------------------------------


def saga_get(*, saga_id: uuid.UUID | str) -> Saga:
    return Saga.objects.using(ALIAS).get(id=saga_id)


@transaction.atomic(using=ALIAS, durable=True)
def saga_retry(*, saga_id: uuid.UUID | str) -> Saga:
    """Re-drive a FAILED saga's compensation from the step where it stopped (operator action)."""
    saga = Saga.objects.using(ALIAS).get(id=saga_id)
    if saga.state != SagaState.FAILED:
        raise SagaStateError(f"only a FAILED saga can be retried; this one is {saga.state}")
    if not _advance(saga.id, expected_version=saga.version, state=SagaState.COMPENSATING, finished_at=None,
                    redrives=0):
        raise SagaStateError("the saga changed meanwhile; reload and try again")
    _dispatch_on_commit(saga.id)
    return Saga.objects.using(ALIAS).get(id=saga_id)


@transaction.atomic(using=ALIAS, durable=True)
def saga_compensate(*, saga_id: uuid.UUID | str, reason: str) -> Saga:
    """Abandon a running or FAILED saga: compensate its steps from the current one down (operator action)."""
    saga = Saga.objects.using(ALIAS).get(id=saga_id)
    if saga.state == SagaState.FAILED:
        moved = _advance(saga.id, expected_version=saga.version, state=SagaState.COMPENSATING, finished_at=None,
                         redrives=0)
        if moved:
            _dispatch_on_commit(saga.id)
    elif saga.state == SagaState.STARTED:
        moved = _compensation_begin(saga, reason=reason)
    else:
        raise SagaStateError(f"a {saga.state} saga cannot be compensated")
    if not moved:
        raise SagaStateError("the saga changed meanwhile; reload and try again")
    return Saga.objects.using(ALIAS).get(id=saga_id)


@dataclasses.dataclass
class RecoveryReport:
    redriven: int = 0
    compensating: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"re-driven {self.redriven}, compensation started {self.compensating}, failed {self.failed}"


def sagas_recover(*, now: datetime | None = None, limit: int = 500) -> RecoveryReport:
    """Re-drive every running saga that made no progress in time; return what was done.

    A saga past its overall deadline compensates instead of retrying; one whose
    compensation was re-driven `SAGAS_MAX_REDRIVES` times without finishing is
    FAILED for an operator. Safe to run from several processes at once: each
    saga moves only by a conditional update.
    """
    now = now or timezone.now()
    report = RecoveryReport()
    stalled = list(Saga.objects.using(ALIAS).filter(state__in=RUNNING_STATES, stalled_after__lt=now)
                   .order_by("stalled_after")[:limit])
    for saga in stalled:
        with transaction.atomic(using=ALIAS, durable=True):
            outcome = _recover_one(saga, now=now)
        if outcome:
            setattr(report, outcome, getattr(report, outcome) + 1)
    if stalled:
        logger.info("saga watchdog: %s", report)
    return report


def _recover_one(saga: Saga, *, now: datetime) -> str | None:
    step_name = definition_get(saga.type).steps[saga.current_step].name
    if saga.state == SagaState.STARTED and now >= saga.deadline:
        last_error = _last_error(str(saga.id), saga.current_step, StepKind.ACTION)
        reason = f"deadline passed at step {step_name}" + (f" (last error: {last_error})" if last_error else "")
        return "compensating" if _compensation_begin(saga, reason=reason) else None
    if saga.state == SagaState.COMPENSATING and saga.redrives >= settings.SAGAS_MAX_REDRIVES:
        error = f"compensation of {step_name} made no progress after {saga.redrives} re-drives"
        return "failed" if _advance(saga.id, expected_version=saga.version, state=SagaState.FAILED,
                                    finished_at=now, error=error) else None
    if _advance(saga.id, expected_version=saga.version, redrives=F("redrives") + 1):
        _dispatch_on_commit(saga.id)
        return "redriven"
    return None
