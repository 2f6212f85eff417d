"""Deliver outbox rows to consumers in-process, in any order, with duplicates.

Tests use it to drive the domain consumers (`scores.services`,
`leaderboard.projections`) directly, without the relay and queues, and to
control the delivery order the way a misbehaving network would.
"""
from __future__ import annotations

import random

from leaderboard.projections import CONSUMED_TYPES, standings_apply_many
from sagas.messages import Envelope
from sagas.messaging_models import AbstractOutboxMessage
from scores.models import OutboxMessage as ScoresOutbox
from scores.services import MATCH_EVENTS, ledger_score_matches
from tournament.models import OutboxMessage as TournamentOutbox


def outbox_envelopes(outbox: type[AbstractOutboxMessage], *, after_id: int = 0, **filters) -> list[Envelope]:
    """Return the outbox's rows after `after_id` as the envelopes a relay would send, in outbox order."""
    rows = outbox.objects.filter(id__gt=after_id, **filters).order_by("id")
    return [Envelope(message_id=str(row.message_id), type=row.type, schema_version=row.schema_version,
                     aggregate_type=row.aggregate_type, aggregate_id=row.partition_key,
                     aggregate_version=row.aggregate_version, correlation_id=row.correlation_id,
                     causation_id=row.causation_id, occurred_at=row.occurred_at.isoformat(), payload=row.payload)
            for row in rows]


def shuffled_with_duplicates(envelopes: list[Envelope], rng: random.Random, duplicates: int) -> list[Envelope]:
    """Return the envelopes in a random order, with `duplicates` of them delivered twice."""
    delivered = list(envelopes) + [rng.choice(envelopes) for _ in range(duplicates if envelopes else 0)]
    rng.shuffle(delivered)
    return delivered


def in_runs(envelopes: list[Envelope], rng: random.Random | None) -> list[list[Envelope]]:
    """Split the envelopes into runs as a consumer's batches would be: one each, or random lengths with `rng`."""
    runs: list[list[Envelope]] = []
    while len(envelopes) > sum(map(len, runs)):
        start = sum(map(len, runs))
        runs.append(envelopes[start:start + (rng.randint(1, 6) if rng else 1)])
    return runs


def deliver_to_scores(envelopes: list[Envelope], rng: random.Random | None = None) -> None:
    for run in in_runs([envelope for envelope in envelopes if envelope.type in MATCH_EVENTS], rng):
        ledger_score_matches(envelopes=run)


def deliver_to_leaderboard(envelopes: list[Envelope], rng: random.Random | None = None) -> None:
    for run in in_runs([envelope for envelope in envelopes if envelope.type in CONSUMED_TYPES], rng):
        standings_apply_many(envelopes=run)


def pump(*, tournament_id: str) -> None:
    """Deliver every event of the tournament in outbox order, as a relay would (match events before their points)."""
    match_engine = [e for e in outbox_envelopes(TournamentOutbox) if e.payload.get("tournament_id") == tournament_id]
    deliver_to_scores(match_engine)
    score_engine = outbox_envelopes(ScoresOutbox, partition_key__startswith=f"{tournament_id}/")
    deliver_to_leaderboard(match_engine + score_engine)
