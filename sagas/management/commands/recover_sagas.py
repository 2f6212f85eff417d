"""Re-drive sagas that made no progress within their deadline (what the beat watchdog does)."""
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sagas.orchestrator import sagas_recover


class Command(BaseCommand):
    help = ("Find running sagas past their step deadline and re-drive them from the saga log: re-send the "
            "current step, or compensate once the saga's overall deadline passed.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="most sagas to handle in this run (default 500)")

    def handle(self, *args, limit: int, **options) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1", returncode=2)
        self.stdout.write(str(sagas_recover(limit=limit)))
