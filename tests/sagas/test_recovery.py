"""Crashes and lost messages: every saga still ends COMPLETED or COMPENSATED, each effect applied once.

The worker processes are real and really die (SIGKILL); the broker really
loses its messages (FLUSHDB of the test broker's own database).
"""
import contextlib
import uuid

import pytest
from django.core.management import CommandError, call_command

from celery.utils.functional import arity_greater

from config.celery import app
from sagas.definitions import CREATE_TOURNAMENT
from sagas.models import RUNNING_STATES, Saga
from sagas.orchestrator import _saga_create
from sagas.tasks import step_failed
from scores.models import LedgerEvent
from tests.support.sagas import SAGA_DATABASES, recovering
from tests.support.waiting import wait_until
from tests.support.workers import SERVICE_QUEUES, CeleryWorker
from tournament.models import OutboxMessage, Tournament

pytestmark = pytest.mark.django_db(transaction=True, databases=SAGA_DATABASES)

A = "ACTION"


def assert_each_effect_once(runs) -> None:
    """One LedgerOpened per (tournament, player) at most, and one tournament event per version."""
    for run in runs:
        opened = list(LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id, version=1)
                      .values_list("player_id", flat=True))
        assert LedgerEvent.objects.using("scores").filter(
            tournament_id=run.tournament_id, type="scores.LedgerOpened").count() == len(set(opened))
        tournament = Tournament.objects.using("tournament").get(id=run.tournament_id)
        versions = list(OutboxMessage.objects.using("tournament").filter(partition_key=str(run.tournament_id))
                        .values_list("aggregate_version", flat=True))
        assert sorted(versions) == list(range(1, tournament.version + 1)), (run, versions)


@pytest.mark.parametrize("point", ["before_effect", "after_effect"])
def test_a_pool_process_killed_in_step_two_is_replaced_and_the_step_applies_once(sagas, point):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="crash", at=point)
    # when the process running step 2 dies (before its commit, or after it but before the log knows)
    run = sagas.start_tournament(players)
    # then the message is redelivered, and the effect is there exactly once
    assert sagas.wait_terminal(run.saga_id).state == "COMPLETED"
    assert [t["fault"] for t in sagas.trips()] == ["crash"]
    step_two = [status for name, _, status in sagas.timeline(run.saga_id) if name == "open_ledgers"]
    assert step_two == ["FAILED", "SUCCEEDED" if point == "before_effect" else "SKIPPED"]
    assert LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id).count() == 2
    assert_each_effect_once([run])


@contextlib.contextmanager
def session_worker_paused(session_worker):
    """Let only the workers this test starts consume the service queues, for its duration."""
    for queue in SERVICE_QUEUES:
        app.control.cancel_consumer(queue, destination=[session_worker.hostname], reply=True, timeout=5)
    try:
        yield
    finally:
        for queue in SERVICE_QUEUES:
            app.control.add_consumer(queue, destination=[session_worker.hostname], reply=True, timeout=5)


def test_a_worker_killed_mid_step_and_restarted_leaves_every_saga_terminal_with_effects_once(
        sagas, celery_worker, broker):
    eligible = sagas.players(*[f"p{i}" for i in range(6)])
    suspended = sagas.players("sus", suspended=("sus",))
    rosters = [[eligible[i], eligible[(i + 1) % 6]] + (suspended if i % 3 == 0 else []) for i in range(6)]
    with session_worker_paused(celery_worker):
        doomed = CeleryWorker(f"doomed-{uuid.uuid4().hex[:6]}").start()
        try:
            # given both pool processes of the only worker stuck in step 2
            sagas.fail("open_ledgers", fault="hang", seconds=60, times=2)
            runs = [sagas.start_tournament(roster) for roster in rosters]
            wait_until(lambda: len(sagas.trips()) == 2, message="two step-2 runs in progress")
            # when the whole worker is SIGKILLed (nothing acknowledged, nothing rejected) and restarted
            doomed.kill()
        finally:
            doomed.stop()
        restarted = CeleryWorker(f"restarted-{uuid.uuid4().hex[:6]}").start()
        try:
            # then the watchdog re-drives what the dead worker held, and every saga ends
            recovering(lambda: not Saga.objects.using("sagas").filter(state__in=RUNNING_STATES).exists(),
                       message="all sagas terminal")
        finally:
            restarted.stop()
    states = {str(run.saga_id): Saga.objects.using("sagas").get(id=run.saga_id).state for run in runs}
    for run, roster in zip(runs, rosters, strict=True):
        assert states[str(run.saga_id)] == ("COMPENSATED" if suspended[0] in roster else "COMPLETED")
    assert Saga.objects.using("sagas").filter(redrives__gt=0).count() >= 1
    assert_each_effect_once(runs)


def test_a_broker_that_loses_every_queued_message_mid_saga_is_recovered_by_the_watchdog(sagas, broker):
    players = sagas.players(*[f"p{i}" for i in range(4)])
    suspended = sagas.players("sus", suspended=("sus",))
    # given sagas whose step 2 is slow enough that most of them are still queued
    sagas.fail("open_ledgers", fault="hang", seconds=0.5, times=4)
    runs = [sagas.start_tournament([players[i % 4], players[(i + 1) % 4]] + (suspended if i % 4 == 0 else []))
            for i in range(8)]
    wait_until(lambda: sagas.trips(), message="step 2 in progress")
    # when the broker's database is emptied (this suite's own Redis database: never FLUSHALL)
    broker.flushdb()
    # then nothing is stranded: the watchdog re-sends from the log and every saga ends
    recovering(lambda: not Saga.objects.using("sagas").filter(state__in=RUNNING_STATES).exists(),
               message="all sagas terminal after the flush")
    assert Saga.objects.using("sagas").filter(redrives__gt=0).exists(), "no message was lost: the test proves nothing"
    for i, run in enumerate(runs):
        assert Saga.objects.using("sagas").get(id=run.saga_id).state == ("COMPENSATED" if i % 4 == 0 else "COMPLETED")
    assert_each_effect_once(runs)


def test_a_saga_past_its_overall_deadline_compensates_instead_of_retrying(sagas, settings):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="hang", seconds=1.0)
    run = sagas.start_tournament(players)
    wait_until(lambda: sagas.trips(), message="step 2 running")
    # when the watchdog runs after the saga's deadline (its clock moved on; the step is still running)
    Saga.objects.using("sagas").filter(id=run.saga_id).update(deadline="2000-01-01T00:00Z",
                                                               stalled_after="2000-01-01T00:00Z")
    call_command("recover_sagas")
    # then it compensates, and the late step cannot move it on or leave its ledgers open
    saga = sagas.wait_terminal(run.saga_id)
    assert saga.state == "COMPENSATED" and "deadline passed at step open_ledgers" in saga.error
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "CANCELLED"
    assert not LedgerEvent.objects.using("scores").filter(tournament_id=run.tournament_id,
                                                          type="scores.LedgerOpened").exclude(
        player_id__in=LedgerEvent.objects.using("scores").filter(
            tournament_id=run.tournament_id, type="scores.LedgerClosed").values("player_id")).exists()


def test_recover_sagas_refuses_a_bad_limit_with_exit_code_two():
    with pytest.raises(CommandError) as refused:
        call_command("recover_sagas", "--limit", "0")
    assert refused.value.returncode == 2


def test_a_start_that_crashed_after_writing_the_saga_log_is_finished_by_the_beat_watchdog_task(sagas, settings):
    players = sagas.players("ann", "bob")
    # given the starter died right after committing the saga row: no tournament, no message
    payload = {"tournament_id": str(uuid.uuid4()), "name": "Orphan cup", "participants": players}
    # (the first half of saga_start, with no step run or sent after it)
    saga = _saga_create(definition=CREATE_TOURNAMENT, payload=payload, correlation_id=sagas.correlation_id,
                        idempotency_key=None, fingerprint="").saga
    assert not Tournament.objects.using("tournament").filter(id=saga.payload["tournament_id"]).exists()
    Saga.objects.using("sagas").filter(id=saga.id).update(stalled_after="2000-01-01T00:00Z")
    # when beat's watchdog entry fires (sent to a worker like beat sends it)
    entry = settings.CELERY_BEAT_SCHEDULE["sagas-watchdog"]
    app.send_task(entry["task"], **entry["options"])
    # then the saga runs from step 1 and the tournament exists, ACTIVE
    assert sagas.wait_terminal(saga.id).state == "COMPLETED"
    assert Tournament.objects.using("tournament").get(id=saga.payload["tournament_id"]).status == "ACTIVE"
    assert Saga.objects.using("sagas").get(id=saga.id).redrives == 1


def test_the_step_errback_is_sent_as_a_task_not_run_inline_in_the_failing_worker():
    # Celery calls an errback inline (lost if that worker dies) when its task takes more than one
    # positional argument; ours takes one, so it travels as a message like any task.
    assert not arity_greater(step_failed.__header__, 1)


def test_a_compensation_re_driven_too_often_without_progress_is_failed_for_an_operator(sagas, settings):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",))
    # given a compensation stuck (here: hanging) that was already re-driven the maximum number of times
    sagas.fail("create_pending", kind="COMPENSATION", fault="hang", seconds=4)
    run = sagas.start_tournament([ann, bob])
    wait_until(lambda: Saga.objects.using("sagas").filter(id=run.saga_id, state="COMPENSATING", current_step=0)
               .exists(), message="compensating step 1")
    Saga.objects.using("sagas").filter(id=run.saga_id).update(redrives=settings.SAGAS_MAX_REDRIVES,
                                                               stalled_after="2000-01-01T00:00Z")
    # when the watchdog finds it stalled once more
    call_command("recover_sagas")
    # then it gives up on it visibly instead of re-sending forever
    saga = Saga.objects.using("sagas").get(id=run.saga_id)
    assert saga.state == "FAILED" and "made no progress after" in saga.error
