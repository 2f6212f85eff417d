"""Array parameters built by `pg_array`: PostgreSQL must read back exactly what was given."""
import datetime
import enum
import uuid

import pytest
from django.db import connection

from config.raw_sql import json_value, pg_array


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
