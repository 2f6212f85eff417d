"""Operators' pages: sagas with their timeline and actions; tournaments, participants and players."""
import pytest
from django.contrib.auth import get_user_model

from scores.ledger import LedgerStatus, ledger_load
from scores.models import Player
from tests.support.sagas import SAGA_DATABASES
from tournament.models import Tournament

pytestmark = pytest.mark.django_db(transaction=True, databases=SAGA_DATABASES)


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("operator", "op@example.com", "pw"))
    return client


def test_every_operator_page_renders_the_saga_and_its_participants(admin_client, sagas):
    ann, bob = sagas.players("ann", "bob", suspended=("bob",))
    run = sagas.start_tournament([ann, bob])
    sagas.wait_terminal(run.saga_id)
    saga_page = admin_client.get(f"/admin/sagas/saga/{run.saga_id}/change/")
    assert saga_page.status_code == 200
    assert b"Timeline (one row per attempt)" in saga_page.content and b"is suspended" in saga_page.content
    for url in ["/admin/sagas/saga/?state__exact=COMPENSATED&type__exact=create_tournament",
                f"/admin/sagas/saga/?q={sagas.correlation_id}", "/admin/tournament/tournament/?status__exact=CANCELLED",
                f"/admin/tournament/tournament/{run.tournament_id}/change/", "/admin/tournament/participant/",
                "/admin/scores/player/?suspended__exact=1", f"/admin/scores/player/{bob}/change/"]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert str(run.saga_id).encode() in admin_client.get(f"/admin/sagas/saga/?q={sagas.correlation_id}").content


def test_the_compensate_action_abandons_a_stuck_saga(admin_client, sagas):
    players = sagas.players("ann", "bob")
    sagas.fail("open_ledgers", fault="hang", seconds=2.0)
    run = sagas.start_tournament(players)
    # when an operator compensates it while step 2 hangs
    response = admin_client.post("/admin/sagas/saga/", {"action": "compensate", "_selected_action": [run.saga_id]})
    assert response.status_code == 302
    # then the hanging step, once done, cannot move it on: the saga compensates everything it did
    saga = sagas.wait_terminal(run.saga_id)
    assert saga.state == "COMPENSATED" and "operator operator" in saga.error
    assert Tournament.objects.using("tournament").get(id=run.tournament_id).status == "CANCELLED"
    assert all(ledger_load(tournament_id=str(run.tournament_id), player_id=p).status != LedgerStatus.OPEN
               for p in players)


def test_the_suspend_action_calls_the_service(admin_client, sagas):
    (ann,) = sagas.players("ann")
    admin_client.post("/admin/scores/player/", {"action": "suspend", "_selected_action": [ann]})
    player = Player.objects.using("scores").get(id=ann)
    assert (player.suspended, player.version) == (True, 2)
