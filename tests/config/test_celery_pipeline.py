"""At-least-once work on real workers: every queue served, results recorded, crashes redelivered."""
import os
import signal
import time
import uuid

import pytest
from django_celery_results.models import TaskResult

from config.celery import app
from tests.support.waiting import wait_until
from tests.support.workers import SERVICE_QUEUES, CeleryWorker


@pytest.mark.django_db(transaction=True, databases=["default"])
@pytest.mark.parametrize("queue", SERVICE_QUEUES)
def test_a_task_sent_to_each_service_queue_runs_and_its_result_is_recorded(celery_worker, queue):
    # when a task is sent to the service's queue
    result = app.send_task("tests.probe.echo", args=[f"hello {queue}"], queue=queue)
    # then a real worker runs it and django-celery-results stores the outcome
    row = wait_until(lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").first(),
                     message=f"result of the task sent to {queue}")
    assert row.result == f'"hello {queue}"'
    assert row.worker == celery_worker.hostname


def attempts(broker, marker: str) -> list[int]:
    return [int(a) for a in broker.lrange(f"probe:{marker}:finished", 0, -1)]


def held_unacked(broker, marker: str) -> bool:
    """Return True while the broker holds the task carrying `marker` as delivered but unacknowledged."""
    return any(marker.encode() in message for message in broker.hvals("unacked"))


def test_a_killed_pool_process_gets_its_task_redelivered_at_once(broker, celery_worker):
    # given a task running in one pool process of a live worker
    marker = uuid.uuid4().hex
    app.send_task("tests.probe.hold_first_attempt", args=[marker, 60], queue="sagas")
    pid = int(wait_until(lambda: broker.lindex(f"probe:{marker}:pids", 0), message="first attempt started"))
    assert pid in celery_worker.pool_pids()
    # when that pool process is killed with SIGKILL
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    # then reject_on_worker_lost requeues it and it finishes on a second attempt, well before
    # any visibility timeout could have restored it
    wait_until(lambda: attempts(broker, marker) == [2], timeout=30, message="second attempt finished")
    assert time.monotonic() - killed_at < 30


def test_a_killed_worker_gets_its_task_redelivered_after_the_visibility_timeout(broker, django_db_setup):
    # given a worker with a short, explicit visibility timeout running a task on its own queue
    visibility_timeout = 10
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = {"CELERY_BROKER_VISIBILITY_TIMEOUT": str(visibility_timeout)}
    doomed = CeleryWorker("doomed", queues=(queue,), concurrency=1, env=env).start()
    marker = uuid.uuid4().hex
    app.send_task("tests.probe.hold_first_attempt", args=[marker, 60], queue=queue)
    wait_until(lambda: broker.lindex(f"probe:{marker}:pids", 0), message="first attempt started")
    # when the whole worker dies at once (no chance to reject or requeue)
    doomed.kill()
    killed_at = time.monotonic()
    # then a worker starting within the timeout leaves the message with its dead owner
    early = CeleryWorker("early", queues=(queue,), concurrency=1, env=env).start()
    assert held_unacked(broker, marker) and broker.llen(queue) == 0
    early.stop()
    assert time.monotonic() - killed_at < visibility_timeout, "too slow to observe the window"
    assert attempts(broker, marker) == []
    # and once the timeout has passed, the next worker's sweep restores and runs it
    wait_until(lambda: time.monotonic() - killed_at > visibility_timeout, timeout=visibility_timeout + 1,
               message="visibility timeout elapsed")
    survivor = CeleryWorker("survivor", queues=(queue,), concurrency=1, env=env).start()
    try:
        wait_until(lambda: attempts(broker, marker) == [2], timeout=30, message="task redelivered")
    finally:
        survivor.stop()
