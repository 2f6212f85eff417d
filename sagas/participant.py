"""The participant side of a saga step: run an effect exactly once, record it, let the chain go on.

A participant declares a step as a function of a `StepContext` that calls
its own service function, decorated with `saga_step(name=, alias=, inbox=)`.
The runner wraps it in the participant's transaction together with a row in
the participant's own inbox, keyed by (saga id, step, kind): a repeated
delivery finds the row and changes nothing. The runner, part of the engine,
records each attempt in the saga log and moves the saga on by a conditional
update; if another runner moved it first, this one stops its chain.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import TRANSIENT_ERRORS, app
from sagas import faults
from sagas.definitions import definition_get
from sagas.messaging_models import AbstractInboxMessage
from sagas.models import StepKind, StepStatus
from sagas.orchestrator import (
    attempt_begin,
    attempt_finish,
    attempt_retrying,
    attempt_succeeded,
    retry_countdown,
    saga_dispatch,
    saga_get,
    step_awaits_next,
    step_message_id,
)

logger = logging.getLogger(__name__)
_task_discovery = threading.Lock()


class StepRefused(Exception):
    """A business refusal: the saga compensates at once, without retrying."""


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What a step's effect gets: the saga's payload and the step's identity."""

    saga_id: str
    saga_type: str
    step: int
    kind: str
    payload: dict[str, Any]
    correlation_id: str
    reason: str

    @property
    def message_id(self) -> str:
        """Return the idempotency key of this step and kind (the same on every delivery)."""
        return str(step_message_id(self.saga_id, self.step, self.kind))

    @property
    def action_message_id(self) -> str:
        """Return the key of this step's action (what a compensation looks for to undo)."""
        return str(step_message_id(self.saga_id, self.step, StepKind.ACTION))

    @property
    def step_name(self) -> str:
        return definition_get(self.saga_type).steps[self.step].name


Effect = Callable[[StepContext], None]


class Outcome:
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FENCED = "fenced"


def _apply_once(*, effect: Effect, alias: str, inbox: type[AbstractInboxMessage], ctx: StepContext) -> str:
    """Run `effect` and record it in the participant's inbox, in one transaction on its alias.

    The inbox row goes in first (rolled back with the effect if that fails),
    unless it is already there (a duplicate) or, for an action, its
    compensation's row is (fenced off: applying it now would leave an effect
    nobody undoes).
    """
    consumer = f"saga.{ctx.saga_type}"
    table = inbox._meta.db_table
    fence = str(step_message_id(ctx.saga_id, ctx.step, StepKind.COMPENSATION)) if ctx.kind == StepKind.ACTION else None
    connection = transaction.get_connection(alias)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # The lock serialises this step's action and compensation (and their duplicates) in the
        # participant; the INSERT is a statement of its own, so its snapshot is taken after the lock
        # and sees what they committed. With client-side binding (Django's default for psycopg 3)
        # both travel in one round trip (the simple query protocol runs several statements).
        lock = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
        insert = (f"INSERT INTO {table} (consumer, message_id, type, processed_at) SELECT %s, %s, %s, %s "
                  f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE consumer = %s AND message_id = %s) "
                  f"ON CONFLICT (consumer, message_id) DO NOTHING RETURNING id")
        lock_params = [f"saga-step:{ctx.saga_id}:{ctx.step}"]
        insert_params = [consumer, ctx.message_id, f"{ctx.saga_type}.{ctx.step_name}.{ctx.kind.lower()}",
                         timezone.now(), consumer, fence]
        if connection.settings_dict["OPTIONS"].get("server_side_binding"):
            cursor.execute(lock, lock_params)
            cursor.execute(insert, insert_params)
        else:
            cursor.execute(f"{lock}; {insert}", lock_params + insert_params)
            cursor.nextset()
        if cursor.fetchone() is None:
            duplicate = inbox.objects.using(alias).filter(consumer=consumer, message_id=ctx.message_id).exists()
            return Outcome.DUPLICATE if duplicate else Outcome.FENCED
        _realise_fault(ctx, "before_effect")
        effect(ctx)
    return Outcome.APPLIED


def _realise_fault(ctx: StepContext, point: str) -> None:
    armed = faults.fault_take(correlation_id=ctx.correlation_id, step_name=ctx.step_name, kind=ctx.kind, point=point)
    if armed is None:
        return
    fault, seconds = armed
    logger.warning("saga %s: injected fault %s at %s of %s %s", ctx.saga_id, fault, point, ctx.step_name, ctx.kind)
    if fault == "transient":
        from django.db import OperationalError

        raise OperationalError(f"injected transient fault at {point}")
    if fault == "refuse":
        raise StepRefused(f"injected refusal at {point}")
    if fault == "error":
        raise RuntimeError(f"injected error at {point}")
    if fault == "hang":
        time.sleep(seconds)
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGKILL)


@dataclasses.dataclass(frozen=True)
class StepRun:
    advanced: bool
    outcome: str | None


def step_run(*, effect: Effect, alias: str, inbox: type[AbstractInboxMessage], command: dict[str, Any],
             task_id: str, worker: str, attempt: int) -> StepRun:
    """Run one delivery of a step; return whether it moved the saga on.

    Exceptions propagate after the attempt is recorded as failed: the caller
    retries transient ones, and the saga log decides what a final failure means.
    """
    ctx = StepContext(**command)
    began = attempt_begin(saga_id=ctx.saga_id, saga_type=ctx.saga_type, step=ctx.step, kind=ctx.kind,
                          task_id=task_id, worker=worker,
                          attempt=attempt)
    if began is None:
        logger.info("saga %s: %s %s is no longer current; ignored", ctx.saga_id, ctx.step, ctx.kind)
        return StepRun(advanced=False, outcome=None)
    try:
        outcome = _apply_once(effect=effect, alias=alias, inbox=inbox, ctx=ctx)
        _realise_fault(ctx, "after_effect")
    except Exception as exc:
        attempt_finish(attempt_id=began.id, status=StepStatus.FAILED, error=f"{type(exc).__name__}: {exc}"
                       if not isinstance(exc, StepRefused) else str(exc))
        raise
    # SKIPPED: the effect was already there (a duplicate) or must never be (fenced); either way the saga moves on.
    status = StepStatus.SUCCEEDED if outcome == Outcome.APPLIED else StepStatus.SKIPPED
    advanced = attempt_succeeded(saga_id=ctx.saga_id, saga_type=ctx.saga_type, step=ctx.step, kind=ctx.kind,
                                 attempt=began, status=status)
    return StepRun(advanced=advanced, outcome=outcome)


class SagaStepTask(Task):
    """A step task: at-least-once delivery, transient errors retried with backoff and jitter.

    Retries are the runner's own (`retry_countdown`, capped by
    `SAGAS_STEP_MAX_RETRIES`); a refusal or a bug is not retried. A final
    failure fires the chain's errback task, and the saga log decides.
    """

    autoretry_for = ()
    ignore_result = True
    acks_late = True
    reject_on_worker_lost = True
    saga_effect: Effect
    saga_alias: str
    saga_inbox: type[AbstractInboxMessage]


def saga_step(*, name: str, alias: str, inbox: type[AbstractInboxMessage]) -> Callable[[Effect], SagaStepTask]:
    """Declare `effect` as the step task `name` of a participant owning `alias` and `inbox`."""

    def decorate(effect: Effect) -> SagaStepTask:
        @shared_task(name=name, bind=True, base=SagaStepTask, saga_effect=staticmethod(effect), saga_alias=alias,
                     saga_inbox=inbox)
        def step_task(self: SagaStepTask, **command: Any) -> str | None:
            try:
                run = step_run(effect=self.saga_effect, alias=self.saga_alias, inbox=self.saga_inbox,
                               command=command, task_id=self.request.id, worker=self.request.hostname or "",
                               attempt=self.request.retries + 1)
            except TRANSIENT_ERRORS as exc:
                if self.request.retries >= settings.SAGAS_STEP_MAX_RETRIES:
                    raise
                countdown = retry_countdown(self.request.retries)
                attempt_retrying(saga_id=command["saga_id"], countdown=countdown)
                raise self.retry(exc=exc, countdown=countdown, max_retries=settings.SAGAS_STEP_MAX_RETRIES) from exc
            if not run.advanced and not (run.outcome and step_awaits_next(
                    saga_id=command["saga_id"], saga_type=command["saga_type"], step=command["step"],
                    kind=command["kind"])):
                # The log moved on without this delivery (a stale duplicate, or compensation began):
                # the rest of this chain belongs to whoever moved it.
                self.request.chain = None
                self.request.callbacks = None
            return run.outcome

        step_task.__doc__ = effect.__doc__
        return step_task

    return decorate


def step_run_inline(*, task_name: str, command: dict[str, Any]) -> bool:
    """Run a step in this process (no broker hop); return whether it moved the saga on.

    Used for a saga's first step when the caller must see its effect at once.
    A failure is handed to the workers: the step is sent as a task, which
    retries it or lets the saga compensate, and the error is raised here.
    """
    if task_name not in app.tasks:
        # A web process has not imported the apps' tasks modules yet (a worker does at start);
        # one thread imports them while any other waits.
        with _task_discovery:
            if task_name not in app.tasks:
                app.loader.import_default_modules()
    task: SagaStepTask = app.tasks[task_name]
    try:
        run = step_run(effect=task.saga_effect, alias=task.saga_alias, inbox=task.saga_inbox, command=command,
                       task_id="", worker=f"inline@{os.uname().nodename}:{os.getpid()}", attempt=1)
    except Exception:
        saga_dispatch(saga_get(saga_id=command["saga_id"]))
        raise
    return run.advanced
