"""`python manage.py rebuild_leaderboard [--tournament ID]`: drop the read model and replay it from its event log."""
import time
import uuid

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.projections import leaderboard_rebuild


class Command(BaseCommand):
    help = ("Drop the leaderboard projections (of one tournament, or all) and replay them from the events the "
            "read model has stored; consumers wait while it runs, readers keep the old standings until it commits.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tournament", help="Rebuild only this tournament (UUID).")

    def handle(self, *args, tournament: str | None = None, **options) -> None:
        if tournament is not None:
            try:
                tournament = str(uuid.UUID(tournament))
            except ValueError as exc:
                raise CommandError(f"{tournament!r} is not a tournament id (a UUID)", returncode=2) from exc
        started = time.perf_counter()
        count = leaderboard_rebuild(tournament_id=tournament)
        scope = f"tournament {tournament}" if tournament else "every tournament"
        self.stdout.write(f"Rebuilt the leaderboard of {scope} from {count} events "
                          f"in {time.perf_counter() - started:.2f}s.")
