"""Tables of the saga log and the backbone (schema `sagas`).

The saga log is the source of truth of every saga: the broker only carries
the next step. A saga row changes only by a conditional update on its
`version` (see `sagas.orchestrator`), so two workers never both advance it.
"""
import uuid

from django.db import models

from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)


class SagaState(models.TextChoices):
    STARTED = "STARTED"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"


RUNNING_STATES = (SagaState.STARTED, SagaState.COMPENSATING)


class StepKind(models.TextChoices):
    ACTION = "ACTION"
    COMPENSATION = "COMPENSATION"


class StepStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Saga(models.Model):
    """One saga instance: where it is, what it carries, until when it may run."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=100, help_text="The name of its definition.")
    state = models.CharField(max_length=12, choices=SagaState.choices, default=SagaState.STARTED)
    current_step = models.PositiveSmallIntegerField(
        default=0, help_text="Index of the step being run, or being compensated while compensating.")
    payload = models.JSONField(default=dict)
    correlation_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    idempotency_key = models.CharField(max_length=300, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField(blank=True, default="", help_text="Why it compensates; passed to compensations.")
    error = models.TextField(blank=True, default="", help_text="The latest error, for operators.")
    deadline = models.DateTimeField(help_text="After this the saga compensates instead of moving on.")
    stalled_after = models.DateTimeField(help_text="The watchdog re-drives the saga if it has not moved by then.")
    redrives = models.PositiveIntegerField(default=0, help_text="Times the watchdog or an operator re-sent work.")
    version = models.PositiveIntegerField(default=1, help_text="Incremented on every change (optimistic lock).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["type", "idempotency_key"], name="saga_idempotency_key_once"),
            models.CheckConstraint(
                condition=models.Q(state__in=SagaState.values), name="saga_state_known"),
        ]
        indexes = [
            # The watchdog's scan: only running sagas, by how long they have stood still.
            models.Index(fields=["stalled_after"], condition=models.Q(state__in=RUNNING_STATES),
                         name="saga_running_stalled_after"),
            models.Index(fields=["state", "type", "-created_at"], name="saga_state_type_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} [{self.state}]"


class SagaStepAttempt(models.Model):
    """One attempt at one step's action or compensation, as a worker ran it."""

    saga = models.ForeignKey(Saga, on_delete=models.CASCADE, related_name="attempts")
    step = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=StepKind.choices)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.RUNNING)
    attempt = models.PositiveIntegerField(help_text="1 for the first delivery, then per retry or re-drive.")
    task_id = models.CharField(max_length=255, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["saga", "started_at", "id"]
        indexes = [models.Index(fields=["saga", "step", "kind"], name="saga_attempt_step")]

    def __str__(self) -> str:
        return f"{self.name} {self.kind.lower()} #{self.attempt} [{self.status}]"


class OutboxMessage(AbstractOutboxMessage):
    """Events the sagas app itself publishes (and the benchmark's)."""


class InboxMessage(AbstractInboxMessage):
    """Messages the sagas app's own consumers have applied."""


class ConsumerPosition(AbstractConsumerPosition):
    """The last version of each aggregate the sagas app's consumers applied."""


class ParkedMessage(AbstractParkedMessage):
    """Events the sagas app's consumers received ahead of a missing version."""


class DeadLetter(AbstractDeadLetter):
    """Backbone dead letters: undecodable or unknown-type messages (no consumer owns them), and the sagas app's own."""
