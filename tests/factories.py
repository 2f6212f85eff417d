"""Given-state builders for tests: tournaments as the create-tournament saga leaves them.

They write what the saga's steps write, through the same service-level
helpers: the Match Engine's tournament with its participants and its
TournamentCreated/TournamentActivated events in the Match Engine's outbox,
and an open ledger (LedgerOpened) per participant in the Score Engine.
"""
from __future__ import annotations

import uuid

from django.db import transaction

from sagas.outbox import publish
from scores.ledger import ledger_append, ledger_load
from scores.messages import LedgerOpened
from tournament.messages import TournamentActivated, TournamentCreated
from tournament.models import OutboxMessage, Participant, Tournament, TournamentStatus


def tournament_given(*, players: list[str], status: str = TournamentStatus.ACTIVE, name: str = "Cup") -> str:
    """Create a tournament in `status` (PENDING or ACTIVE) with its events and open ledgers; return its id."""
    tournament_id = str(uuid.uuid4())
    with transaction.atomic(using="tournament"):
        tournament = Tournament.objects.using("tournament").create(id=tournament_id, name=name)
        Participant.objects.using("tournament").bulk_create(
            [Participant(tournament=tournament, player_id=player_id) for player_id in players])
        publish(TournamentCreated(tournament_id=tournament_id, name=name, participants=list(players)),
                outbox=OutboxMessage, aggregate_id=tournament_id, aggregate_version=1)
        if status == TournamentStatus.ACTIVE:
            tournament.status, tournament.version = TournamentStatus.ACTIVE, 2
            tournament.save(using="tournament")
            publish(TournamentActivated(tournament_id=tournament_id), outbox=OutboxMessage,
                    aggregate_id=tournament_id, aggregate_version=2)
    with transaction.atomic(using="scores"):
        for player_id in players:
            ledger_append(state=ledger_load(tournament_id=tournament_id, player_id=player_id),
                          event=LedgerOpened(tournament_id=tournament_id, player_id=player_id))
    return tournament_id
