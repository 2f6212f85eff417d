"""The Celery application: JSON only, acknowledged late, retried with backoff."""
import os

from celery import Celery, Task
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
