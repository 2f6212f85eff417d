"""Session fixtures: fresh test databases, a clean broker, a real Celery worker."""
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from tests.support.databases import recreate_test_databases
from tests.support.workers import CeleryWorker, EventConsumers

pytest_plugins = ["tests.support.sagas", "tests.support.api"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker):
    """Create the `_test` databases and migrate every alias, as `migrate_all` does in production."""
    with django_db_blocker.unblock():
        recreate_test_databases()
        call_command("migrate_all", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def broker(django_db_setup) -> redis.Redis:
    """The test broker, emptied once: no message from an earlier run is consumed."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def celery_worker(broker):
    """One real worker for the whole session, consuming every service queue."""
    worker = CeleryWorker("session").start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def events_worker(broker):
    """The events consumers for the session, as `consume_events` runs them: EVENT_CONSUMER_PROCESSES workers,
    each a pool of one, sharing the partition queues.

    They load the probe consumer (tests/support/event_probe.py); a gap closes
    after one second instead of thirty, so re-fetch tests stay fast.
    """
    consumers = EventConsumers("events", settings.EVENT_CONSUMER_PROCESSES,
                               env={"INBOX_GAP_DEADLINE_SECONDS": "1"}, include=("tests.support.event_probe",))
    consumers.start()
    yield consumers
    consumers.stop()


@pytest.fixture
def probe_effects(django_db_setup, django_db_blocker):
    """An empty `probe_effect` table for the probe consumer's effects."""
    from tests.support.event_probe import create_effect_table

    with django_db_blocker.unblock():
        create_effect_table()
