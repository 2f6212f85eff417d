"""Business rules of the Score Engine: players, and opening and closing their ledgers."""
from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from sagas.participant import StepRefused
from scores.ledger import LedgerStatus, ledger_append, ledger_load
from scores.messages import LedgerClosed, LedgerOpened
from scores.models import LedgerEvent, Player

ALIAS = "scores"


class PlayerExists(Exception):
    """A player with this id is already registered."""


@transaction.atomic(using=ALIAS, durable=True)
def player_register(*, player_id: str, name: str) -> Player:
    """Register a player (not suspended); raise PlayerExists if the id is taken."""
    try:
        with transaction.atomic(using=ALIAS):
            return Player.objects.using(ALIAS).create(id=player_id, name=name)
    except IntegrityError as exc:
        raise PlayerExists(f"player {player_id!r} already exists") from exc


@transaction.atomic(using=ALIAS, durable=True)
def player_update(*, player_id: str, suspended: bool) -> Player:
    """Suspend a player or lift the suspension (Player.DoesNotExist if unknown); the version moves on a change."""
    player = Player.objects.using(ALIAS).select_for_update().get(id=player_id)
    if player.suspended != suspended:
        player.suspended = suspended
        player.version += 1
        player.save(using=ALIAS, update_fields=["suspended", "version", "updated_at"])
    return player


# Saga steps: these join the step's transaction (not durable, no savepoint of their
# own) so the participant's inbox row commits or rolls back together with their effect.

@transaction.atomic(using=ALIAS, savepoint=False)
def ledgers_open(*, tournament_id: str, player_ids: list[str], causation_id: str) -> None:
    """Open a ledger (a LedgerOpened event) for each player; refuse unknown or suspended players.

    The players are share-locked until commit: a suspension (an UPDATE) cannot
    slip in between the check and the open, while sagas sharing players do not
    wait for each other (FOR SHARE, which the ORM cannot express).
    """
    players = {player.id: player for player in Player.objects.using(ALIAS).raw(
        f"SELECT * FROM {Player._meta.db_table} WHERE id = ANY(%s) FOR SHARE", [list(player_ids)])}
    unknown = [player_id for player_id in player_ids if player_id not in players]
    suspended = [player_id for player_id in player_ids if player_id in players and players[player_id].suspended]
    problems = [f"unknown player {player_id!r}" for player_id in unknown]
    problems += [f"player {player_id!r} is suspended" for player_id in suspended]
    if problems:
        raise StepRefused("; ".join(problems))
    # A stream with events is open (or was closed): opening is idempotent per stream. The new
    # streams start at version 1 in one statement; the unique (stream, version) still guards them.
    started = set(LedgerEvent.objects.using(ALIAS).filter(tournament_id=tournament_id, player_id__in=player_ids)
                  .values_list("player_id", flat=True).distinct())
    now = timezone.now()
    LedgerEvent.objects.using(ALIAS).bulk_create(
        LedgerEvent(tournament_id=tournament_id, player_id=player_id, version=1, type=LedgerOpened.TYPE,
                    schema_version=LedgerOpened.SCHEMA_VERSION, causation_id=causation_id, recorded_at=now,
                    payload=LedgerOpened(tournament_id=tournament_id, player_id=player_id).to_payload())
        for player_id in player_ids if player_id not in started)


@transaction.atomic(using=ALIAS, savepoint=False)
def ledgers_close(*, tournament_id: str, opened_by: str, reason: str, causation_id: str) -> None:
    """Close the still-open ledgers of `tournament_id` that the message `opened_by` opened."""
    player_ids = LedgerEvent.objects.using(ALIAS).filter(
        tournament_id=tournament_id, type=LedgerOpened.TYPE, causation_id=opened_by).values_list("player_id", flat=True)
    for player_id in player_ids:
        state = ledger_load(tournament_id=tournament_id, player_id=player_id)
        if state.status == LedgerStatus.OPEN:
            ledger_append(state=state, causation_id=causation_id,
                          event=LedgerClosed(tournament_id=tournament_id, player_id=player_id, reason=reason))
