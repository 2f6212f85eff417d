"""The leaderboard's event consumer: a thin wrapper over `leaderboard.projections` for the messaging framework."""
from leaderboard.projections import CONSUMED_TYPES, standings_apply_many
from sagas.inbox import event_handler
from sagas.messages import Envelope

STANDINGS_CONSUMER = "leaderboard.standings"


@event_handler(consumer=STANDINGS_CONSUMER, event_types=CONSUMED_TYPES, app_label="leaderboard", batch=True)
def apply_to_standings(envelopes: list[Envelope]) -> None:
    """Record the events in the read model's log and project them onto the standings. Called at least once."""
    standings_apply_many(envelopes=envelopes)
