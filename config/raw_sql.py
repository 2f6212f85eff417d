"""SQL the ORM does not write well: bulk writes from arrays, and values read back through raw cursors."""
from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections, models
from psycopg.types.json import Json, Jsonb


def pg_array(values: Iterable[Any]) -> str:
    """Return `values` as one PostgreSQL array literal, for a parameter cast in SQL (`%s::uuid[]`).

    psycopg dumps a Python list element by element in Python, escaping each
    through regular expressions: 7 µs an element, measured, which made up 40%
    of an event consumer's Python time. Quoting every element with two string
    replacements does the same job about eight times faster.
    """
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: Any) -> str:
    if type(value) is str:  # the common case first
        text = value
    elif value is None:
        return "NULL"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, decimal.Decimal, uuid.UUID)):
        text = str(value)
    elif isinstance(value, (dict, list)):
        text = json.dumps(value)
    elif isinstance(value, (Json, Jsonb)):
        text = (value.dumps or json.dumps)(value.obj)
    elif isinstance(value, (datetime.date, datetime.time)):
        text = value.isoformat()
    elif isinstance(value, str):
        text = str.__str__(value)  # a str subclass (an enum member, say): its value, not its name
    else:
        raise TypeError(f"pg_array cannot write a {type(value).__name__}: {value!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def insert_rows(objs: Sequence[models.Model], *, using: str) -> None:
    """Insert new model instances in one `INSERT … SELECT FROM unnest(…)` and set their primary keys.

    What `bulk_create` does on PostgreSQL (Django 5.2 inserts through
    `unnest` too), with each column passed as one `pg_array` literal instead
    of a list psycopg dumps element by element: an event's outbox row is
    written on every hot path, and that dumping was a sixth of an event
    consumer's CPU (py-spy). For models whose primary key the database
    assigns; Python-side defaults and `auto_now_add` apply as on save,
    database defaults (`db_default`) are not supported.
    """
    if not objs:
        return
    meta, connection = objs[0]._meta, connections[using]
    columns = [field for field in meta.concrete_fields if field is not meta.pk and not field.generated]
    quote = connection.ops.quote_name
    rows, arrays = _unnest(columns, objs, connection,
                           lambda field, obj: field.get_db_prep_save(field.pre_save(obj, add=True), connection))
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in columns)})"
            f" SELECT * FROM {rows} RETURNING {quote(meta.pk.column)}",
            arrays)
        keys = [key for key, in cursor.fetchall()]
    for obj, key in zip(objs, keys, strict=True):  # RETURNING keeps the order of the rows inserted
        obj.pk = key
        obj._state.adding, obj._state.db = False, using


def _unnest(fields: list[models.Field], objs: Sequence[models.Model], connection: Any,
            value: Callable[[models.Field, models.Model], Any]) -> tuple[str, list[str]]:
    """Return `unnest(%s::type[], …)` with a column per field, and its parameters: one `pg_array` each."""
    # Each cast without the length (varchar(200) -> varchar): a cast to varchar(n) cuts a longer value short,
    # where the column refuses it. Django's own unnest inserts drop it for the same reason.
    casts = [f"%s::{field.db_type(connection).split('(')[0]}[]" for field in fields]
    return f"unnest({', '.join(casts)})", [pg_array(value(field, obj) for obj in objs) for field in fields]


def update_rows(objs: Sequence[models.Model], fields: list[str], *, using: str) -> int:
    """Write `fields` of each object to its row by primary key, in one `UPDATE … FROM unnest(…)`; return the count.

    What `bulk_update` does, without its `CASE WHEN pk = … THEN …` per field and
    row: building that for a few dozen rows took longer than running it.
    """
    if not objs:
        return 0
    meta, connection = objs[0]._meta, connections[using]
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    quote = connection.ops.quote_name
    names = [quote(field.column) for field in columns]
    rows, arrays = _unnest(columns, objs, connection,
                           lambda field, obj: field.get_db_prep_save(getattr(obj, field.attname), connection))
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} AS t SET {', '.join(f'{name} = k.{name}' for name in names[1:])}"
            f" FROM {rows} AS k({', '.join(names)}) WHERE t.{names[0]} = k.{names[0]}",
            arrays)
        return cursor.rowcount


def json_value(value: Any) -> Any:
    """Decode a jsonb column read through a raw cursor (Django's psycopg 3 setup hands those over as text)."""
    return json.loads(value) if isinstance(value, str) else value
