"""Tables of the saga log and the backbone (schema `sagas`)."""
from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)


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
