"""Tables of the Match Engine (schema `tournament`)."""
import uuid

from django.db import models

from sagas.messaging_models import AbstractInboxMessage, AbstractOutboxMessage


class TournamentStatus(models.TextChoices):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


class Tournament(models.Model):
    """A tournament; `PENDING` while its creation saga runs (it then accepts no results)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=TournamentStatus.choices, default=TournamentStatus.PENDING)
    saga_id = models.UUIDField(null=True, blank=True, db_index=True)
    version = models.PositiveIntegerField(default=1, help_text="Incremented on every change (optimistic locking).")
    cancel_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="tournament_status_created")]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"


class Participant(models.Model):
    """A player (owned by the Score Engine, referenced by id only) entered in a tournament."""

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="participants")
    player_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tournament", "player_id"], name="participant_once_per_tournament"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id} in {self.tournament_id}"


class OutboxMessage(AbstractOutboxMessage):
    """Events of the Match Engine, written in the transaction of the change they announce."""


class InboxMessage(AbstractInboxMessage):
    """Messages the Match Engine has applied (idempotency by unique constraint)."""


class Match(models.Model):
    """A result between two participants; `version` is its optimistic lock and its events' aggregate version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="matches")
    player_a = models.CharField(max_length=64)
    player_b = models.CharField(max_length=64)
    score_a = models.PositiveIntegerField()
    score_b = models.PositiveIntegerField()
    version = models.PositiveIntegerField(default=1, help_text="Incremented on every correction (If-Match / ETag).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(player_a=models.F("player_b")), name="match_players_differ"),
            models.CheckConstraint(
                condition=models.Q(score_a__gte=0, score_b__gte=0), name="match_scores_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.player_a} {self.score_a}-{self.score_b} {self.player_b} (v{self.version})"
