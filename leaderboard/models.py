"""Tables of the leaderboard read model (schema `leaderboard`)."""
from django.db import models

from sagas.messaging_models import AbstractInboxMessage


class InboxMessage(AbstractInboxMessage):
    class Meta(AbstractInboxMessage.Meta):
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message_id"], name="leaderboard_inbox_once"),
        ]
