"""Fault injection into saga steps, for tests and drills; inert unless `SAGAS_FAULT_INJECTION` is on.

A fault is armed in Redis (the broker's server, so a test and every worker
see it) for one saga correlation id (or `*`), step name, kind and point, with
a count of how many times it fires. The step runner asks `fault_take` at two
points: `before_effect` (inside the participant's transaction) and
`after_effect` (its effect committed, the saga log not yet told). Nothing is
mocked: a `transient` fault raises the same OperationalError a lost database
connection raises, a `crash` SIGKILLs the worker process for real.
"""
from __future__ import annotations

import json
import os
from functools import cache

import redis
from django.conf import settings

FAULTS = ("transient", "refuse", "error", "crash", "hang")
POINTS = ("before_effect", "after_effect")
KEY_PREFIX = "sagas:fault"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _key(target: str, step_name: str, kind: str, point: str) -> str:
    return f"{KEY_PREFIX}:{target}:{step_name}:{kind}:{point}"


def trips_key(target: str) -> str:
    return f"{KEY_PREFIX}-trips:{target}"


def fault_arm(*, target: str, step_name: str, kind: str, point: str, fault: str, times: int = 1,
              seconds: float = 0.0) -> None:
    """Make the next `times` runs of a step fail with `fault` at `point` (for sagas correlated with `target`)."""
    if fault not in FAULTS or point not in POINTS:
        raise ValueError(f"fault must be one of {FAULTS} and point one of {POINTS}")
    key = _key(target, step_name, kind, point)
    _redis().delete(key)
    _redis().hset(key, mapping={"fault": fault, "remaining": times, "seconds": seconds})
    _redis().expire(key, 3600)


def fault_take(*, correlation_id: str, step_name: str, kind: str, point: str) -> tuple[str, float] | None:
    """Return the fault to realise here (and its seconds), consuming one firing; None almost always."""
    if not settings.SAGAS_FAULT_INJECTION:
        return None
    client = _redis()
    for target in (correlation_id, "*"):
        key = _key(target, step_name, kind, point)
        # Atomic take: of two runners racing for the last firing, one gets it.
        if client.exists(key) and client.hincrby(key, "remaining", -1) >= 0:
            fault, seconds = client.hmget(key, "fault", "seconds")
            client.rpush(trips_key(target), json.dumps(
                {"step": step_name, "kind": kind, "point": point, "fault": fault.decode(), "pid": os.getpid()}))
            return fault.decode(), float(seconds or 0)
    return None
