"""The leaderboard's event consumer: a thin wrapper over `leaderboard.projections` for the messaging framework."""
from leaderboard.projections import CONSUMED_TYPES, standings_apply
from sagas.inbox import event_handler
from sagas.messages import Envelope

STANDINGS_CONSUMER = "leaderboard.standings"


@event_handler(consumer=STANDINGS_CONSUMER, event_types=CONSUMED_TYPES, app_label="leaderboard")
def apply_to_standings(envelope: Envelope) -> None:
    """Record the event in the read model's log and project it onto the standings. Called at least once."""
    standings_apply(envelope=envelope)
