"""Tables of the leaderboard read model (schema `leaderboard`).

Everything here is derived from events: `ConsumedEvent` is the read model's
own copy of every event it applied (its log, and the history that
`rebuild_leaderboard` replays); the other tables are projections of that log
and can be dropped and rebuilt at any time.
"""
from django.db import models

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


class ConsumedEvent(models.Model):
    """One event as the read model received it; `id` is its position in the read model's log."""

    message_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=200)
    schema_version = models.PositiveSmallIntegerField()
    aggregate_type = models.CharField(max_length=100)
    aggregate_id = models.CharField(max_length=200)
    aggregate_version = models.PositiveIntegerField()
    correlation_id = models.CharField(max_length=100, blank=True, default="")
    causation_id = models.CharField(max_length=100, blank=True, default="")
    occurred_at = models.DateTimeField(help_text="When the producer wrote it (its outbox row).")
    payload = models.JSONField()
    tournament_id = models.UUIDField(help_text="Every event the read model consumes belongs to one tournament.")
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["aggregate_type", "aggregate_id", "aggregate_version"],
                                    name="leaderboard_event_once_per_version"),
        ]
        indexes = [models.Index(fields=["tournament_id", "id"], name="leaderboard_event_position")]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} {self.aggregate_id} v{self.aggregate_version}"


class TournamentView(models.Model):
    """A tournament as its events describe it."""

    tournament_id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=10, blank=True, default="")
    version = models.PositiveIntegerField(default=0, help_text="The last tournament event applied.")

    class Meta:
        ordering = ["tournament_id"]

    def __str__(self) -> str:
        return f"{self.name or self.tournament_id} [{self.status}]"


class MatchView(models.Model):
    """The latest version of a match result the read model has applied."""

    match_id = models.UUIDField(primary_key=True)
    tournament_id = models.UUIDField(db_index=True)
    version = models.PositiveIntegerField()
    player_a = models.CharField(max_length=64)
    player_b = models.CharField(max_length=64)
    score_a = models.PositiveIntegerField()
    score_b = models.PositiveIntegerField()

    class Meta:
        ordering = ["tournament_id", "match_id"]

    def __str__(self) -> str:
        return f"{self.player_a} {self.score_a}-{self.score_b} {self.player_b} (v{self.version})"


class Standing(models.Model):
    """A player's line in a tournament's table; `score_difference` is stored so the ranking is one index scan."""

    tournament_id = models.UUIDField()
    player_id = models.CharField(max_length=64)
    points = models.IntegerField(default=0)
    played = models.IntegerField(default=0)
    wins = models.IntegerField(default=0)
    draws = models.IntegerField(default=0)
    losses = models.IntegerField(default=0)
    score_for = models.BigIntegerField(default=0)
    score_against = models.BigIntegerField(default=0)
    score_difference = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["tournament_id", "-points", "-wins", "-score_difference", "player_id"]
        constraints = [
            models.UniqueConstraint(fields=["tournament_id", "player_id"], name="standing_once_per_player"),
            models.CheckConstraint(condition=models.Q(score_difference=models.F("score_for") - models.F("score_against")),
                                   name="standing_score_difference_consistent"),
        ]
        indexes = [
            models.Index("tournament_id", models.F("points").desc(), models.F("wins").desc(),
                         models.F("score_difference").desc(), "player_id", name="standing_ranking"),
        ]

    def __str__(self) -> str:
        return f"{self.player_id}: {self.points} pts in {self.tournament_id}"
