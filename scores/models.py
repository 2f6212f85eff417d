"""Tables of the Score Engine (schema `scores`)."""
from django.core.validators import RegexValidator
from django.db import models

from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)

player_id_validator = RegexValidator(r"^[A-Za-z0-9_.-]{1,64}$", "1-64 letters, digits, '_', '.' or '-'.")


class Player(models.Model):
    """A registered player; a suspended one cannot enter a tournament."""

    id = models.CharField(primary_key=True, max_length=64, validators=[player_id_validator])
    name = models.CharField(max_length=200)
    suspended = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} ({self.name}){' [suspended]' if self.suspended else ''}"


class LedgerEvent(models.Model):
    """One immutable event of a (tournament, player) score stream.

    The unique (stream, version) pair is the optimistic lock of event sourcing:
    two writers appending the same next version conflict, and one retries.
    """

    tournament_id = models.UUIDField()
    player_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=100)
    schema_version = models.PositiveSmallIntegerField(default=1)
    payload = models.JSONField(default=dict)
    causation_id = models.CharField(max_length=100, blank=True, default="", help_text="The message that caused it.")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["tournament_id", "player_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["tournament_id", "player_id", "version"], name="ledger_event_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="ledger_event_version_positive"),
        ]
        indexes = [models.Index(fields=["player_id", "tournament_id", "recorded_at"], name="ledger_event_as_of")]

    def __str__(self) -> str:
        return f"{self.tournament_id}/{self.player_id} v{self.version} {self.type}"


class LedgerSnapshot(models.Model):
    """The folded state of a stream at one version, so loading reads it and at most N-1 events after it.

    A cache, never the truth: deleting every snapshot changes no result, only
    the time a load takes. `schema` names the state's shape; a load ignores
    snapshots of another shape.
    """

    tournament_id = models.UUIDField()
    player_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    schema = models.PositiveSmallIntegerField()
    state = models.JSONField()
    recorded_at = models.DateTimeField(help_text="When the event at `version` was recorded (for loads as of a time).")

    class Meta:
        ordering = ["tournament_id", "player_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["tournament_id", "player_id", "version"], name="ledger_snapshot_version"),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.tournament_id}/{self.player_id} v{self.version}"


class ScoredMatch(models.Model):
    """Which version of a match the Score Engine has scored, and the points it gave each player.

    The consumer locks this row while it scores the match, so the events of
    one match apply one at a time, an older or repeated version is dropped and
    a correction knows exactly which points to revoke.
    """

    match_id = models.UUIDField(primary_key=True)
    tournament_id = models.UUIDField()
    version = models.PositiveIntegerField(default=0, help_text="The match version scored; 0 before the first.")
    player_a = models.CharField(max_length=64, blank=True, default="")
    player_b = models.CharField(max_length=64, blank=True, default="")
    points_a = models.PositiveSmallIntegerField(default=0)
    points_b = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tournament_id", "match_id"]

    def __str__(self) -> str:
        return f"match {self.match_id} scored at v{self.version}"


class OutboxMessage(AbstractOutboxMessage):
    """Events of the Score Engine, written in the transaction of the change they announce."""


class InboxMessage(AbstractInboxMessage):
    """Messages the Score Engine has applied (idempotency by unique constraint)."""


class ConsumerPosition(AbstractConsumerPosition):
    """The last version of each aggregate the Score Engine's consumers applied (per-aggregate order)."""


class ParkedMessage(AbstractParkedMessage):
    """Events the Score Engine received ahead of a missing version, applied once the gap closes."""


class DeadLetter(AbstractDeadLetter):
    """Events the Score Engine's consumers could not apply; replayed from the admin."""
