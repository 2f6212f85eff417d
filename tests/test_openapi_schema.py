"""The OpenAPI schema generates without errors or warnings, and the docs page is served."""
import pytest
from django.core.management import call_command


def test_the_schema_validates_with_no_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    for path in ("/api/tournaments/", "/api/tournaments/{id}/", "/api/players/", "/api/players/{player_id}/",
                 "/api/sagas/", "/api/sagas/{id}/", "/api/sagas/{id}/retry/"):
        assert f"  {path}:" in schema, path


@pytest.mark.django_db(databases=["default"])
def test_the_docs_page_is_served(staff_api_client):
    assert staff_api_client.get("/api/docs/").status_code == 200
    assert staff_api_client.get("/api/schema/").status_code == 200
