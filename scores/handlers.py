"""The Score Engine's event consumers: thin wrappers over `scores.services` for the messaging framework."""
from sagas.inbox import event_handler
from sagas.messages import Envelope
from scores.services import MATCH_EVENTS, ledger_score_matches

MATCH_RESULTS_CONSUMER = "scores.match_results"


@event_handler(consumer=MATCH_RESULTS_CONSUMER, event_types=MATCH_EVENTS, app_label="scores", batch=True)
def score_match_results(envelopes: list[Envelope]) -> None:
    """Award (or, for a correction, revoke and award) the matches' points, in order. Called at least once."""
    ledger_score_matches(envelopes=envelopes)
