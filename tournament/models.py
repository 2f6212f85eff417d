"""Tables of the tournament service (schema `tournament`)."""
from django.db import models

from sagas.messaging_models import AbstractInboxMessage, AbstractOutboxMessage


class OutboxMessage(AbstractOutboxMessage):
    class Meta(AbstractOutboxMessage.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "partition_key", "aggregate_version"], name="tournament_outbox_one_version"
            ),
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(status="PENDING"), name="tournament_outbox_pending"),
        ]


class InboxMessage(AbstractInboxMessage):
    class Meta(AbstractInboxMessage.Meta):
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message_id"], name="tournament_inbox_once"),
        ]
