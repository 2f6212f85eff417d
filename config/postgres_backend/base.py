"""PostgreSQL backend that creates the alias's schema before migrating into it."""
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def service_schema(self) -> str | None:
        """Return the schema named by this alias's `search_path` option, if any."""
        options = self.settings_dict.get("OPTIONS", {}).get("options", "")
        prefix = "-c search_path="
        return options[len(prefix):].split(",")[0] if options.startswith(prefix) else None

    def prepare_database(self) -> None:
        # `migrate` calls this hook first; django_migrations itself lives in the schema.
        super().prepare_database()
        schema = self.service_schema()
        if schema:
            with self.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
