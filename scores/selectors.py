"""Reads of the Score Engine."""
from scores.models import Player

ALIAS = "scores"


def player_get(*, player_id: str) -> Player:
    """Return the player (Player.DoesNotExist if unknown)."""
    return Player.objects.using(ALIAS).get(id=player_id)
