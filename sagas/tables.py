"""Find each service's concrete backbone tables by their abstract base, never by importing the service."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model

from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)


def concrete_models(base: type[Model], app_label: str | None = None) -> list[type[Model]]:
    """Return the installed concrete subclasses of `base` (of one app, if given)."""
    return [model for model in apps.get_models()
            if issubclass(model, base) and (app_label is None or model._meta.app_label == app_label)]


def outbox_models() -> list[type[AbstractOutboxMessage]]:
    """Return every installed outbox (one per service that publishes)."""
    return concrete_models(AbstractOutboxMessage)


@cache
def outbox_model(app_label: str) -> type[AbstractOutboxMessage]:
    """Return `app_label`'s outbox; ImproperlyConfigured if that app publishes nothing."""
    found = concrete_models(AbstractOutboxMessage, app_label)
    if not found:
        raise ImproperlyConfigured(f"app {app_label!r} has no outbox table")
    return found[0]


@dataclass(frozen=True)
class ConsumerTables:
    """The tables a consuming service keeps in its own schema."""

    inbox: type[AbstractInboxMessage]
    position: type[AbstractConsumerPosition]
    parked: type[AbstractParkedMessage]
    dead_letter: type[AbstractDeadLetter]


@cache
def consumer_tables(app_label: str) -> ConsumerTables:
    """Return `app_label`'s inbox, positions, parked messages and dead letters."""
    found = {base: concrete_models(base, app_label)
             for base in (AbstractInboxMessage, AbstractConsumerPosition, AbstractParkedMessage, AbstractDeadLetter)}
    missing = [base.__name__.removeprefix("Abstract") for base, models in found.items() if not models]
    if missing:
        raise ImproperlyConfigured(f"app {app_label!r} consumes events but lacks {', '.join(missing)}")
    return ConsumerTables(*(models[0] for models in found.values()))
