"""Tables of the leaderboard read model (schema `leaderboard`)."""
from sagas.messaging_models import AbstractInboxMessage


class InboxMessage(AbstractInboxMessage):
    """Events the read model has applied (idempotency by unique constraint)."""
