"""The Celery application: JSON only, acknowledged late, retried with backoff."""
import os

from celery import Celery, Task, signals
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Errors that a later attempt can cure: a database or broker briefly unreachable.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")


class TransientRetryTask(Task):
    """Default task base: retry transient infrastructure errors with backoff and jitter.

    Only errors that a later attempt can cure are retried; a business refusal
    or a bug surfaces at once. Tasks may widen or narrow `autoretry_for`.
    """

    retry_backoff = 1
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 5
    autoretry_for = TRANSIENT_ERRORS


app = Celery("config", task_cls=TransientRetryTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _no_connection_health_checks(**_kwargs) -> None:
    """Turn Django's connection health checks off in worker processes (web requests keep them).

    With `CONN_HEALTH_CHECKS` Django sends `SELECT 1` on the first use of each
    alias after every request or task: two extra round trips per saga step.
    Celery's Django fixup already guards workers around each task: it drops a
    connection left in a failed transaction or after an error it no longer
    answers (`close_if_unusable_or_obsolete`), and one that died while idle
    fails its next query with an OperationalError, a transient error the
    task retries on a fresh connection.
    """
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_HEALTH_CHECKS"] = False
