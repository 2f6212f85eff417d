"""Tables of the leaderboard read model (schema `leaderboard`)."""
from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractParkedMessage,
)


class InboxMessage(AbstractInboxMessage):
    """Events the read model has applied (idempotency by unique constraint)."""


class ConsumerPosition(AbstractConsumerPosition):
    """The last version of each aggregate the read model's consumers applied (per-aggregate order)."""


class ParkedMessage(AbstractParkedMessage):
    """Events the read model received ahead of a missing version, applied once the gap closes."""


class DeadLetter(AbstractDeadLetter):
    """Events the read model's consumers could not apply; replayed from the admin."""
