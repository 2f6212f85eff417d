"""Tasks the tests send to real workers; loaded with `celery worker --include`.

They report through Redis (the broker's server, a key prefix of their own), so
a test can see every attempt, including those of a process that was killed.
"""
import os
import time

import redis
from celery import shared_task
from django.conf import settings


def probe_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@shared_task(name="tests.probe.echo")
def echo(value: str) -> str:
    return value


@shared_task(name="tests.probe.hold_first_attempt")
def hold_first_attempt(marker: str, hold_seconds: float) -> int:
    """Record the attempt and its pid; hold the first attempt long enough to be killed."""
    r = probe_redis()
    attempt = r.incr(f"probe:{marker}:attempts")
    r.rpush(f"probe:{marker}:pids", os.getpid())
    if attempt == 1:
        time.sleep(hold_seconds)
    r.rpush(f"probe:{marker}:finished", attempt)
    return attempt
