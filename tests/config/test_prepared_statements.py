"""Hot statements run through `prepared_cursor`: PostgreSQL parses and plans them once per connection."""
import pytest
from django.db import IntegrityError, connections, transaction
from django.test.utils import CaptureQueriesContext

from config.postgres_backend.base import DatabaseWrapper
from config.settings.base import database_config
from sagas import relay
from sagas.outbox import OutboxStatus
from tournament.models import OutboxMessage


def prepared_statements(alias: str, containing: str) -> list[tuple[int, int]]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
                       [f"%{containing}%"])
        return cursor.fetchall()


@pytest.mark.django_db(databases=["tournament"])
def test_the_relays_claim_is_prepared_once_and_then_runs_on_one_generic_plan():
    # when the relay claims from every partition, more often than the preparing threshold
    with transaction.atomic(using="tournament"):
        for partition in [0, 1, 2, 3] * 2:
            relay._claim("tournament", OutboxMessage, partition, batch_size=100)
        # then the statement is prepared on the connection (for its session) and its runs used the one generic
        # plan: nothing was parsed or planned again per run
        [(generic, custom)] = prepared_statements("tournament", "pg_try_advisory_xact_lock")
    assert generic >= 1 and custom == 0


@pytest.mark.django_db(databases=["tournament"])
def test_a_prepared_cursor_reports_errors_and_queries_as_djangos_own_cursors_do():
    connection = connections["tournament"]
    with CaptureQueriesContext(connection) as queries:
        with pytest.raises(IntegrityError), transaction.atomic(using="tournament"):
            for key in [-1, -2, -3, -4, -5, -6, -1]:  # the repeated key fails past the threshold, prepared
                with connection.prepared_cursor() as cursor:
                    cursor.execute(
                        f"INSERT INTO {OutboxMessage._meta.db_table} (id, message_id, type, schema_version,"
                        " aggregate_type, partition_key, partition, aggregate_version, correlation_id, causation_id,"
                        " occurred_at, payload, status, attempts, last_error, created_at)"
                        " VALUES (%s, gen_random_uuid(), 'probe', 1, 'probe', 'k', 0, %s, '', '', now(), '{}',"
                        " %s, 0, '', now())", [key, -key, OutboxStatus.SENT])
    assert sum("INSERT INTO" in (query["sql"] or "") for query in queries.captured_queries) == 7


def test_prepared_statements_are_on_by_default_and_off_for_a_pooler_that_cannot_keep_them(monkeypatch):
    monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/platform?options=-c%20statement_timeout%3D5000")
    on = database_config("scores", "scores")["OPTIONS"]
    assert on["prepare_threshold"] == 5
    assert on["options"] == "-c statement_timeout=5000 -c search_path=scores -c plan_cache_mode=force_generic_plan"
    monkeypatch.setenv("DATABASE_PREPARE_THRESHOLD", "off")
    off = database_config("default", None)["OPTIONS"]
    assert off["prepare_threshold"] is None and off["options"] == "-c statement_timeout=5000"


def test_the_schema_is_read_from_options_holding_several_settings():
    options = database_config("scores", "scores")["OPTIONS"]
    assert DatabaseWrapper({**connections["scores"].settings_dict, "OPTIONS": options}, "x").service_schema() == "scores"
    assert connections["default"].service_schema() is None
