"""A harness for saga definitions, as a pytest fixture (`sagas`): start, inject, wait, read the timeline.

    def test_a_refused_step_compensates(sagas):
        sagas.fail("open_ledgers", fault="refuse")              # given
        run = sagas.start_tournament(["ann", "bob"])            # when
        assert sagas.wait_terminal(run.saga_id).state == "COMPENSATED"
        assert sagas.timeline(run.saga_id) == [...]              # then: what ran, in order

Faults are armed in Redis for this harness's own correlation id (see
`sagas.faults`), so they reach exactly the sagas this test starts, in any
worker process; nothing is mocked.
"""
from __future__ import annotations

import json
import uuid

import pytest
import redis
from django.conf import settings

from config.celery import app
from sagas.definitions import definition_get
from sagas.faults import fault_arm, trips_key
from sagas.models import RUNNING_STATES, Saga, SagaStepAttempt, StepKind
from sagas.orchestrator import step_command
from scores.services import player_register, player_update
from tests.support.waiting import wait_until
from tournament.services import TournamentStarted, tournament_create

SAGA_DATABASES = ["default", "sagas", "tournament", "scores"]


class SagaHarness:
    def __init__(self) -> None:
        self.correlation_id = f"harness-{uuid.uuid4().hex[:12]}"
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    # given
    def players(self, *names: str, suspended: tuple[str, ...] = ()) -> list[str]:
        """Register players with ids unique to this test; return the ids (suspended ones suspended)."""
        ids = []
        for name in names:
            player = player_register(player_id=f"{name}-{uuid.uuid4().hex[:8]}", name=name)
            if name in suspended:
                player_update(player_id=player.id, suspended=True)
            ids.append(player.id)
        return ids

    def fail(self, step: str, *, fault: str = "transient", kind: str = StepKind.ACTION, at: str = "before_effect",
             times: int = 1, seconds: float = 0.0) -> None:
        """Make the next `times` runs of `step` (its action, or compensation) fail with `fault` at point `at`."""
        fault_arm(target=self.correlation_id, step_name=step, kind=kind, point=at, fault=fault, times=times,
                  seconds=seconds)

    # when
    def start_tournament(self, participants: list[str], *, name: str = "Harness cup",
                         idempotency_key: str | None = None) -> TournamentStarted:
        return tournament_create(name=name, participants=participants, idempotency_key=idempotency_key,
                                 correlation_id=self.correlation_id)

    def redeliver(self, saga_id, step: str, kind: str = StepKind.ACTION) -> None:
        """Send one step's message again, exactly as the engine sent it (a duplicate delivery)."""
        saga = Saga.objects.using("sagas").get(id=saga_id)
        definition = definition_get(saga.type)
        index = [s.name for s in definition.steps].index(step)
        task = definition.steps[index].action if kind == StepKind.ACTION else definition.steps[index].compensation
        app.send_task(task, kwargs=step_command(saga, index, kind), queue=definition.steps[index].queue)

    # then
    def wait_terminal(self, saga_id, *, timeout: float = 30.0) -> Saga:
        return wait_until(lambda: Saga.objects.using("sagas").exclude(state__in=RUNNING_STATES)
                          .filter(id=saga_id).first(), timeout=timeout, message=f"saga {saga_id} terminal")

    def timeline(self, saga_id) -> list[tuple[str, str, str]]:
        """Return every attempt as (step, kind, status), in the order they started."""
        return [(a.name, a.kind, a.status) for a in
                SagaStepAttempt.objects.using("sagas").filter(saga_id=saga_id).order_by("started_at", "id")]

    def effects(self, saga_id) -> list[tuple[str, str]]:
        """Return the (step, kind) attempts that succeeded, in order: what the saga did and undid."""
        return [(name, kind) for name, kind, status in self.timeline(saga_id) if status == "SUCCEEDED"]

    def trips(self) -> list[dict]:
        """Return the injected faults that fired, in order."""
        return [json.loads(raw) for raw in self.redis.lrange(trips_key(self.correlation_id), 0, -1)]


@pytest.fixture
def sagas(celery_worker) -> SagaHarness:
    """A saga harness bound to this test (with the session's real worker running)."""
    return SagaHarness()


def recovering(predicate, *, message: str, timeout: float = 60.0):
    """Wait for `predicate` while running the watchdog, as beat would, between polls."""
    from sagas.orchestrator import sagas_recover

    def recovered():
        sagas_recover()
        return predicate()

    return wait_until(recovered, timeout=timeout, interval=0.5, message=message)
