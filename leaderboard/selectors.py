"""Reads of the leaderboard read model."""
from __future__ import annotations

import dataclasses

from leaderboard.models import ConsumedEvent, Standing, TournamentView

STANDING_COLUMNS = ("player_id", "points", "played", "wins", "draws", "losses", "score_for", "score_against")
RANKING = ("-points", "-wins", "-score_difference", "player_id")


@dataclasses.dataclass(frozen=True)
class Leaderboard:
    tournament_id: str
    status: str
    standings: list[dict]
    last_event: dict | None

    @property
    def lag_ms(self) -> float | None:
        """How long the last applied event took from its producer's commit-time clock to this read model."""
        if self.last_event is None:
            return None
        return (self.last_event["applied_at"] - self.last_event["occurred_at"]).total_seconds() * 1000


def leaderboard_get(*, tournament_id: str) -> Leaderboard | None:
    """Return the standings (ranked: points, wins, score difference, player id) and the last applied event.

    Rank is the row's place in that order: the player id decides every tie the
    other keys leave, so ranks are 1..n without gaps. None if the read model
    has seen nothing of the tournament.
    """
    rows = Standing.objects.using("leaderboard").filter(tournament_id=tournament_id).order_by(*RANKING)
    standings = [{"rank": rank, **dict(zip(STANDING_COLUMNS, row, strict=True))}
                 for rank, row in enumerate(rows.values_list(*STANDING_COLUMNS), start=1)]
    last_event = (ConsumedEvent.objects.using("leaderboard").filter(tournament_id=tournament_id).order_by("-id")
                  .values("id", "message_id", "type", "occurred_at", "applied_at").first())
    if not standings and last_event is None:
        return None
    status = (TournamentView.objects.using("leaderboard").filter(tournament_id=tournament_id)
              .values_list("status", flat=True).first())
    return Leaderboard(tournament_id=str(tournament_id), status=status or "", standings=standings,
                       last_event=last_event)

