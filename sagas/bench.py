"""The benchmark's event and consumer (`python manage.py bench_outbox`); loaded only by the bench and its workers."""
from dataclasses import dataclass

from sagas.inbox import event_handler
from sagas.messages import Envelope, Event

BENCH_CONSUMER = "sagas.bench"
BENCH_AGGREGATE = "sagas.BenchLoad"


@dataclass(frozen=True)
class BenchPinged(Event):
    TYPE = "sagas.BenchPinged"
    AGGREGATE_TYPE = BENCH_AGGREGATE

    sequence: int


@event_handler(consumer=BENCH_CONSUMER, event_types=[BenchPinged.TYPE], app_label="sagas")
def bench_pinged(envelope: Envelope) -> None:
    """Accept the ping: its effect is the inbox row and position the framework commits. Called at least once."""
