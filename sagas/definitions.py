"""Saga definitions: a named list of steps, each an action and, if it has an effect to undo, a compensation.

A definition names its participants' tasks by their Celery name only: the
backbone imports no service. Adding a saga means adding a definition here and
the participants' step tasks (`sagas.participant.saga_step`), nothing else.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Step:
    """One step: the action task, its compensation task (if any), the participant's queue."""

    name: str
    action: str
    queue: str
    compensation: str | None = None


@dataclasses.dataclass(frozen=True)
class SagaDefinition:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not self.steps or len(set(names)) != len(names):
            raise ValueError(f"saga {self.name!r} needs steps with distinct names, got {names}")


CREATE_TOURNAMENT = SagaDefinition(
    name="create_tournament",
    steps=(
        Step("create_pending", action="tournament.saga_create_pending", compensation="tournament.saga_cancel",
             queue="tournament"),
        Step("open_ledgers", action="scores.saga_open_ledgers", compensation="scores.saga_close_ledgers",
             queue="scores"),
        Step("activate", action="tournament.saga_activate", queue="tournament"),
    ),
)

DEFINITIONS: dict[str, SagaDefinition] = {definition.name: definition for definition in (CREATE_TOURNAMENT,)}


def definition_get(name: str) -> SagaDefinition:
    """Return the definition called `name`; KeyError names the known ones."""
    try:
        return DEFINITIONS[name]
    except KeyError:
        raise KeyError(f"no saga definition {name!r}; known: {sorted(DEFINITIONS)}") from None
