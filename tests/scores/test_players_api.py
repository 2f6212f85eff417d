"""The players API of the Score Engine: register, read, suspend and lift."""
import pytest
from rest_framework.test import APIClient

from scores.models import Player

pytestmark = pytest.mark.django_db(databases=["default", "scores"])


def test_a_registered_player_can_be_read_suspended_and_lifted(api_client):
    created = api_client.post("/api/players/", {"id": "ann-1", "name": "Ann"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "id": "ann-1", "name": "Ann", "suspended": False, "version": 1, "created_at": None, "updated_at": None}
    suspended = api_client.patch("/api/players/ann-1/", {"suspended": True}, format="json")
    assert (suspended.status_code, suspended.json()["suspended"], suspended.json()["version"]) == (200, True, 2)
    assert api_client.get("/api/players/ann-1/").json()["suspended"] is True
    lifted = api_client.patch("/api/players/ann-1/", {"suspended": False}, format="json")
    assert (lifted.json()["suspended"], lifted.json()["version"]) == (False, 3)


def test_registering_a_taken_id_is_a_conflict_and_keeps_the_first_player(api_client):
    api_client.post("/api/players/", {"id": "bob", "name": "Bob"}, format="json")
    again = api_client.post("/api/players/", {"id": "bob", "name": "Robert"}, format="json")
    assert again.status_code == 409 and "bob" in again.json()["detail"]
    assert Player.objects.using("scores").get(id="bob").name == "Bob"


@pytest.mark.parametrize("body", [{"id": "has space", "name": "X"}, {"id": "x" * 65, "name": "X"},
                                  {"id": "ok", "name": ""}, {"name": "no id"}])
def test_an_invalid_player_is_a_400_naming_the_field(api_client, body):
    response = api_client.post("/api/players/", body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input." and response.json()["errors"]
    assert not Player.objects.using("scores").exists()


def test_patching_needs_a_boolean_and_an_existing_player(api_client):
    api_client.post("/api/players/", {"id": "cid", "name": "Cid"}, format="json")
    assert api_client.patch("/api/players/cid/", {"suspended": "maybe"}, format="json").status_code == 400
    assert api_client.patch("/api/players/nobody/", {"suspended": True}, format="json").status_code == 404
    assert api_client.get("/api/players/nobody/").json()["detail"] == "no player 'nobody'"


def test_players_need_an_authenticated_user():
    assert APIClient().get("/api/players/x/").status_code == 401
    assert APIClient().post("/api/players/", {"id": "x", "name": "X"}, format="json").status_code == 401
