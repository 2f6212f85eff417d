"""Abstract tables of the messaging backbone; each service owns concrete copies in its schema.

A service's outbox is written in the same transaction as its business change;
a consumer's inbox row, position and effect are written in one transaction of
the consuming service. Constraint and index names carry `%(app_label)s`, so
every service's copy has names of its own.
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
    partition = models.PositiveSmallIntegerField(
        default=0, help_text="Stable hash of the partition key modulo EVENT_PARTITIONS, set when published."
    )
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
            # The relay's claim: one partition's pending rows in id order.
            models.Index(fields=["partition", "id"], condition=models.Q(status="PENDING"),
                         name="%(app_label)s_outbox_pending"),
            models.Index(fields=["sent_at"], condition=models.Q(status="SENT"), name="%(app_label)s_outbox_sent"),
            models.Index(fields=["id"], condition=models.Q(status="DEAD"), name="%(app_label)s_outbox_dead"),
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


class AbstractConsumerPosition(models.Model):
    """The last aggregate version a consumer applied; the row is locked while a message of it is applied."""

    consumer = models.CharField(max_length=100)
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["consumer", "aggregate_type", "aggregate_id"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "aggregate_type", "aggregate_id"],
                                    name="%(app_label)s_position_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.aggregate_type} {self.aggregate_id} at v{self.version}"


class AbstractParkedMessage(models.Model):
    """A message that arrived ahead of a missing version; applied once the gap closes."""

    consumer = models.CharField(max_length=100)
    message_id = models.UUIDField()
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    aggregate_version = models.PositiveIntegerField()
    envelope = models.JSONField()
    parked_at = models.DateTimeField(auto_now_add=True)
    refetch_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["consumer", "aggregate_type", "aggregate_id", "aggregate_version"]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "aggregate_type", "aggregate_id", "aggregate_version"],
                                    name="%(app_label)s_parked_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer}: {self.aggregate_type} {self.aggregate_id} v{self.aggregate_version} (parked)"


class DeadLetterStatus(models.TextChoices):
    DEAD = "DEAD"
    REPLAYED = "REPLAYED"


class AbstractDeadLetter(models.Model):
    """A message a consumer could not apply (undecodable, unknown type, or a handler's non-transient error).

    It was acknowledged so the partition keeps flowing; an operator replays it
    from the admin once the cause is fixed. `consumer` is empty when no consumer
    could even be chosen (undecodable envelope, unknown type).
    """

    consumer = models.CharField(max_length=100, blank=True, default="")
    message_id = models.CharField(max_length=100, blank=True, default="")
    type = models.CharField(max_length=200, blank=True, default="")
    aggregate_type = models.CharField(max_length=100, blank=True, default="")
    aggregate_id = models.CharField(max_length=200, blank=True, default="")
    aggregate_version = models.PositiveIntegerField(null=True, blank=True)
    body = models.JSONField(help_text="The message as received.")
    reason = models.CharField(max_length=40)
    error = models.TextField()
    status = models.CharField(max_length=10, choices=DeadLetterStatus.choices, default=DeadLetterStatus.DEAD)
    attempts = models.PositiveIntegerField(default=1, help_text="How many times it was dead-lettered.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["consumer", "aggregate_type", "aggregate_id", "aggregate_version"],
                         name="%(app_label)s_deadletter_key"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer or '-'}: {self.type or '?'} {self.message_id} [{self.status}] {self.reason}"
