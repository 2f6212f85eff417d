"""Array parameters built by `pg_array`: PostgreSQL must read back exactly what was given."""
import datetime
import enum
import uuid

import pytest
from django.db import connection

from config.raw_sql import insert_rows, json_value, pg_array


def round_trip(values: list, cast: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}[]", [pg_array(values)])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_text_with_quotes_backslashes_braces_commas_and_spaces_comes_back_unchanged():
    awkward = ['a"b', "c\\d", "{x,y}", "NULL", " padded ", "it's", "", "é 漢", None]
    assert round_trip(awkward, "text") == awkward


@pytest.mark.django_db
def test_uuids_numbers_times_and_json_come_back_as_their_types():
    ids = [uuid.uuid4(), uuid.uuid4()]
    moments = [datetime.datetime(2026, 11, 25, 15, 0, 0, 123456, tzinfo=datetime.UTC)]
    documents = [{"name": 'the "best"', "tags": ["a\\b"], "n": 1}, None]
    assert round_trip(ids, "uuid") == ids
    assert round_trip([0, -7, 2**40], "bigint") == [0, -7, 2**40]
    assert round_trip(moments, "timestamptz") == moments
    assert [json_value(value) if value is not None else None
            for value in round_trip(documents, "jsonb")] == documents
    assert round_trip([], "int") == []


@pytest.mark.django_db
def test_an_enum_member_is_written_as_its_value_and_an_unknown_type_is_refused():
    class Colour(str, enum.Enum):
        RED = "red"

    assert round_trip([Colour.RED, True], "text") == ["red", "true"]
    with pytest.raises(TypeError, match="bytes"):
        pg_array([b"raw"])


@pytest.mark.django_db(databases=["tournament"])
def test_insert_rows_writes_every_field_applies_defaults_and_sets_the_primary_keys():
    from django.utils import timezone

    from tournament.models import OutboxMessage

    moment = timezone.now()
    rows = [OutboxMessage(type=f"t{n}", aggregate_type="a", partition_key=key, partition=n, aggregate_version=n + 1,
                          correlation_id="", occurred_at=moment, payload=payload)
            for n, (key, payload) in enumerate([('k"1\\', {"name": 'the "best"', "list": [1, None]}), ("k2", {})])]
    insert_rows(rows, using="tournament")
    assert all(row.pk is not None and not row._state.adding for row in rows)
    stored = {row.pk: row for row in OutboxMessage.objects.using("tournament").all()}
    fields = ["message_id", "type", "schema_version", "aggregate_type", "partition_key", "partition",
              "aggregate_version", "correlation_id", "causation_id", "occurred_at", "payload", "status", "attempts",
              "last_error", "sent_at"]
    for row in rows:
        assert [getattr(stored[row.pk], name) for name in fields] == [getattr(row, name) for name in fields]
        assert stored[row.pk].created_at is not None and stored[row.pk].created_at == row.created_at
    assert stored[rows[0].pk].status == "PENDING" and stored[rows[0].pk].schema_version == 1  # model defaults


@pytest.mark.django_db(databases=["tournament"])
def test_a_value_too_long_for_its_column_is_refused_not_cut_short():
    from django.db import DataError, transaction
    from django.utils import timezone

    from config.raw_sql import update_rows
    from tournament.models import OutboxMessage

    def row(key: str) -> OutboxMessage:
        return OutboxMessage(type="t", aggregate_type="a", partition_key=key, partition=0, aggregate_version=1,
                             occurred_at=timezone.now(), payload={})

    with pytest.raises(DataError), transaction.atomic(using="tournament"):
        insert_rows([row("k" * 201)], using="tournament")
    assert not OutboxMessage.objects.using("tournament").exists()
    stored = row("short")
    insert_rows([stored], using="tournament")
    stored.partition_key = "k" * 201
    with pytest.raises(DataError), transaction.atomic(using="tournament"):
        update_rows([stored], ["partition_key"], using="tournament")
    assert OutboxMessage.objects.using("tournament").get().partition_key == "short"
