"""Create the test databases afresh: one per distinct server and name among the aliases."""
import psycopg
from django.db import connections


def recreate_test_databases() -> None:
    """Drop and create every database the aliases point at (their names end in `_test`)."""
    seen = set()
    for alias in connections:
        settings_dict = connections[alias].settings_dict
        key = (settings_dict["HOST"], settings_dict["PORT"], settings_dict["NAME"])
        if key in seen:
            continue
        seen.add(key)
        name = settings_dict["NAME"]
        assert name.endswith("_test"), f"refusing to drop {name!r}: not a test database"
        with psycopg.connect(
            host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
            user=settings_dict["USER"] or None, password=settings_dict["PASSWORD"] or None,
            dbname="postgres", autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
