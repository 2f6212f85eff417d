"""The ledger stream: state by replay, appends guarded by the stream version."""
import uuid

import pytest
from django.db import transaction

from scores.ledger import LedgerStatus, VersionConflict, ledger_append, ledger_load
from scores.messages import LedgerClosed, LedgerOpened


@pytest.mark.django_db(databases=["scores"])
def test_replaying_the_stream_gives_the_state_after_its_last_event():
    tournament_id = str(uuid.uuid4())
    with transaction.atomic(using="scores"):
        state = ledger_load(tournament_id=tournament_id, player_id="ann")
        state = ledger_append(state=state, event=LedgerOpened(tournament_id=tournament_id, player_id="ann"))
        ledger_append(state=state, event=LedgerClosed(tournament_id=tournament_id, player_id="ann", reason="x"))
    loaded = ledger_load(tournament_id=tournament_id, player_id="ann")
    assert (loaded.status, loaded.version) == (LedgerStatus.CLOSED, 2)


@pytest.mark.django_db(databases=["scores"])
def test_an_append_from_a_stale_version_conflicts_and_leaves_the_stream_intact():
    tournament_id = str(uuid.uuid4())
    with transaction.atomic(using="scores"):
        stale = ledger_load(tournament_id=tournament_id, player_id="bob")
        ledger_append(state=stale, event=LedgerOpened(tournament_id=tournament_id, player_id="bob"))
        with pytest.raises(VersionConflict):
            ledger_append(state=stale, event=LedgerClosed(tournament_id=tournament_id, player_id="bob", reason="x"))
    loaded = ledger_load(tournament_id=tournament_id, player_id="bob")
    assert (loaded.status, loaded.version) == (LedgerStatus.OPEN, 1)
