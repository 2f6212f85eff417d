"""The Score Engine's saga steps (queue `scores`); each is called at least once."""
from sagas.participant import StepContext, saga_step
from scores.models import InboxMessage
from scores.services import ALIAS, ledgers_close, ledgers_open


@saga_step(name="scores.saga_open_ledgers", alias=ALIAS, inbox=InboxMessage)
def saga_open_ledgers(step: StepContext) -> None:
    """Open a ledger for every participant, or refuse the saga. Called at least once."""
    ledgers_open(tournament_id=step.payload["tournament_id"], player_ids=step.payload["participants"],
                 causation_id=step.message_id, correlation_id=step.saga_id)


@saga_step(name="scores.saga_close_ledgers", alias=ALIAS, inbox=InboxMessage)
def saga_close_ledgers(step: StepContext) -> None:
    """Close the ledgers this saga opened (compensation). Called at least once."""
    ledgers_close(tournament_id=step.payload["tournament_id"], opened_by=step.action_message_id,
                  reason=step.reason, causation_id=step.message_id, correlation_id=step.saga_id)
