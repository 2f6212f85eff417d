"""PostgreSQL backend that creates the alias's schema before migrating into it, and prepares hot statements."""
import re

import psycopg
from django.db.backends.postgresql import base, operations
from django.db.backends.utils import CursorWrapper
from django.utils.asyncio import async_unsafe


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        # A prepared statement's run leaves psycopg no query text: a `prepared_cursor` logs its statements as
        # written (their parameters go to the log record beside them), every run alike.
        if isinstance(cursor, base.ServerBindingCursor) and not self.connection.features.uses_server_side_binding:
            return sql
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def service_schema(self) -> str | None:
        """Return the schema named by this alias's `search_path` option, if any."""
        found = re.search(r"-c search_path=([^\s,]+)", self.settings_dict.get("OPTIONS", {}).get("options", ""))
        return found.group(1) if found else None

    def prepare_database(self) -> None:
        # `migrate` calls this hook first; django_migrations itself lives in the schema.
        super().prepare_database()
        schema = self.service_schema()
        if schema:
            with self.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    def direct_connection(self, *, autocommit: bool = True) -> psycopg.Connection:
        """Open a psycopg connection of its own to this alias's database, outside Django's management.

        For what must outlive or stand beside Django's connection: session-level advisory locks, LISTEN.
        """
        params = self.get_connection_params()
        for name in ("cursor_factory", "context", "server_side_binding"):  # Django's, not libpq's
            params.pop(name, None)
        return psycopg.connect(**params, autocommit=autocommit)

    @async_unsafe
    def prepared_cursor(self) -> CursorWrapper:
        """Return a cursor for the hot paths' fixed statements, which PostgreSQL then parses and plans once.

        Django's cursors bind parameters client-side, so PostgreSQL parses and plans every statement anew:
        a third of the server's statement time on the event pipeline (pg_stat_statements). This cursor binds
        server-side on the same connection and transaction, so psycopg prepares a statement once it has run
        `prepare_threshold` times (the `DATABASE_PREPARE_THRESHOLD` setting; psycopg forgets them all on a
        rollback and prepares them again). With no threshold it is Django's own cursor. Errors and query
        logging are Django's. For statements of a fixed text, each holding one command.
        """
        if self.settings_dict["OPTIONS"].get("prepare_threshold") is None:
            return self.cursor()
        # What Django's `_cursor` and `create_cursor` do, with psycopg's server-side binding cursor.
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = base.ServerBindingCursor(self.connection)
            if self.timezone != self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, base.Format.TEXT).timezone:
                base.register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)
