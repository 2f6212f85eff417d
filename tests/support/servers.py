"""Scratch servers and databases for tests that must not share the suite's own."""
import socket

import psycopg
from django.db import connections


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_conninfo(dbname: str) -> dict:
    """Connection parameters for `dbname` on the server the `default` alias uses."""
    s = connections["default"].settings_dict
    return {"host": s["HOST"] or None, "port": s["PORT"] or None, "user": s["USER"] or None,
            "password": s["PASSWORD"] or None, "dbname": dbname}


def scratch_database(suffix: str) -> tuple[str, str]:
    """Create (afresh) a database named after the suite's own; return its name and URL.

    Parallel suites on one server use different base names, so they never collide.
    """
    s = connections["default"].settings_dict
    name = s["NAME"].removesuffix("_test") + f"_{suffix}_test"
    with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return name, f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(**server_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
