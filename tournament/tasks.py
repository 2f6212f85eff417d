"""The Match Engine's saga steps (queue `tournament`); each is called at least once."""
from sagas.participant import StepContext, saga_step
from tournament.models import InboxMessage
from tournament.services import (
    ALIAS,
    tournament_activate,
    tournament_cancel,
    tournament_create_pending,
)


@saga_step(name="tournament.saga_create_pending", alias=ALIAS, inbox=InboxMessage)
def saga_create_pending(step: StepContext) -> None:
    """Create the tournament PENDING with its participants. Called at least once."""
    tournament_create_pending(tournament_id=step.payload["tournament_id"], name=step.payload["name"],
                              participants=step.payload["participants"], saga_id=step.saga_id,
                              causation_id=step.message_id)


@saga_step(name="tournament.saga_cancel", alias=ALIAS, inbox=InboxMessage)
def saga_cancel(step: StepContext) -> None:
    """Cancel the tournament with the saga's reason (compensation). Called at least once."""
    tournament_cancel(tournament_id=step.payload["tournament_id"], reason=step.reason,
                      correlation_id=step.saga_id, causation_id=step.message_id)


@saga_step(name="tournament.saga_activate", alias=ALIAS, inbox=InboxMessage)
def saga_activate(step: StepContext) -> None:
    """Mark the tournament ACTIVE. Called at least once."""
    tournament_activate(tournament_id=step.payload["tournament_id"], correlation_id=step.saga_id,
                        causation_id=step.message_id)
