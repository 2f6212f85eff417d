"""Abstract tables of the messaging backbone; each service owns concrete copies in its schema.

A service's outbox is written in the same transaction as its business change;
its inbox is written in the same transaction as a consumer's effect.
"""
import uuid

from django.db import models


class OutboxStatus(models.TextChoices):
    PENDING = "PENDING"
    SENT = "SENT"
    DEAD = "DEAD"


class AbstractOutboxMessage(models.Model):
    """One message waiting to leave (or already gone from) a service."""

    message_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=200)
    schema_version = models.PositiveSmallIntegerField(default=1)
    aggregate_type = models.CharField(max_length=100)
    partition_key = models.CharField(max_length=200, help_text="The aggregate id; events of one key stay in order.")
    aggregate_version = models.PositiveIntegerField()
    correlation_id = models.CharField(max_length=100, blank=True, default="")
    causation_id = models.CharField(max_length=100, blank=True, default="")
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "partition_key", "aggregate_version"], name="%(app_label)s_outbox_version"
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(status="PENDING"), name="%(app_label)s_outbox_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.partition_key} v{self.aggregate_version} [{self.status}]"


class AbstractInboxMessage(models.Model):
    """A message this service's consumer has already applied (its effect committed with this row)."""

    consumer = models.CharField(max_length=100)
    message_id = models.UUIDField()
    type = models.CharField(max_length=200)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message_id"], name="%(app_label)s_inbox_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.type} {self.message_id}"
