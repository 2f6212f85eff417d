"""Migrate every database alias: `default` and each service's own schema."""
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = "Run migrate on every database alias (each service's schema is created first)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args, interactive: bool = True, verbosity: int = 1, **options) -> None:
        for alias in connections:
            if verbosity:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database alias {alias!r}"))
            call_command("migrate", database=alias, interactive=interactive, verbosity=verbosity,
                         stdout=self.stdout, stderr=self.stderr)
