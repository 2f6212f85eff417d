"""Reads of the saga log."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from django.db.models import QuerySet

from sagas.models import Saga, SagaStepAttempt, StepStatus

ALIAS = "sagas"


def saga_list(*, state: str | None = None, type: str | None = None) -> QuerySet[Saga]:
    """Return sagas, newest first, optionally of one state and type."""
    sagas = Saga.objects.using(ALIAS).prefetch_related("attempts")
    if state:
        sagas = sagas.filter(state=state)
    if type:
        sagas = sagas.filter(type=type)
    return sagas


@dataclasses.dataclass(frozen=True)
class StepSummary:
    """One step's action or compensation over all its attempts."""

    name: str
    kind: str
    status: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    error: str


def saga_steps(*, saga: Saga) -> list[StepSummary]:
    """Summarise the saga's attempts per (step, kind), in the order the steps first started.

    A step that succeeded once is SUCCEEDED, whatever duplicates came later;
    otherwise its latest real attempt speaks.
    """
    grouped: dict[tuple[int, str], list[SagaStepAttempt]] = {}
    # `attempts` is ordered by start (Meta.ordering), and usually prefetched by `saga_list`.
    for attempt in saga.attempts.all():
        grouped.setdefault((attempt.step, attempt.kind), []).append(attempt)
    summaries = []
    for attempts in grouped.values():
        real = [a for a in attempts if a.status != StepStatus.SKIPPED] or attempts
        succeeded = any(a.status == StepStatus.SUCCEEDED for a in attempts)
        last = real[-1]
        summaries.append(StepSummary(
            name=last.name, kind=last.kind, status=StepStatus.SUCCEEDED if succeeded else last.status,
            attempts=len(attempts), started_at=attempts[0].started_at, finished_at=last.finished_at,
            error="" if succeeded else last.error))
    return summaries
