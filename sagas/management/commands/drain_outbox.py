"""`python manage.py drain_outbox [--service NAME] [--batch-size N] [--loop]`: send pending outbox rows now."""
from __future__ import annotations

import argparse
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sagas.outbox import NOTIFY_CHANNEL
from sagas.relay import OutboxListener, RelayReport, relay_services
from sagas.tables import outbox_models


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {number}")
    return number


class Command(BaseCommand):
    help = ("Relay pending outbox rows to their partition queues and print what was sent. "
            "Safe beside the beat tick and other relays (no row is sent twice, no key reordered).")

    def add_arguments(self, parser) -> None:
        services = sorted(model._meta.app_label for model in outbox_models())
        parser.add_argument("--service", action="append", choices=services, metavar="NAME",
                            help=f"only this service's outbox (repeatable; one of {', '.join(services)}); default all")
        parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                            help="rows claimed per batch (default OUTBOX_BATCH_SIZE)")
        parser.add_argument("--loop", action="store_true", help="keep relaying until interrupted (Ctrl-C)")
        parser.add_argument("--interval", type=positive_float, default=1.0, metavar="SECONDS",
                            help="pause between passes with --loop (default 1)")
        parser.add_argument("--listen", action="store_true",
                            help="with --loop: also wake at once on each commit's NOTIFY (OUTBOX_WAKEUP=notify)")

    def handle(self, *args, service: list[str] | None, batch_size: int | None, loop: bool, interval: float,
               listen: bool, **options) -> None:
        if listen and not loop:
            raise CommandError("--listen needs --loop", returncode=2)
        listener = OutboxListener(NOTIFY_CHANNEL) if listen else None
        try:
            while True:
                reports = relay_services(service, batch_size=batch_size)
                for report in reports:
                    if report.sent or report.failed or report.held or report.contended or report.errors or not loop:
                        self.stdout.write(self.describe(report))
                if not loop:
                    return
                # Rows left behind (another relay's partition, an order hold, a batch cut short) are looked at
                # again soon, as the relay task's deferred pass does; otherwise a commit or the interval wakes it.
                soon = settings.OUTBOX_DEFERRED_PASS_SECONDS
                left_behind = any(report.left_behind for report in reports)
                pause = soon if left_behind and 0 < soon < interval else interval
                if listener is not None:
                    listener.wait(pause)
                else:
                    time.sleep(pause)
        except KeyboardInterrupt:
            self.stdout.write("stopped")
        finally:
            if listener is not None:
                listener.close()

    @staticmethod
    def describe(report: RelayReport) -> str:
        line = (f"{report.service}: sent {report.sent} in {report.batches} batch(es), held {report.held}, "
                f"failed {report.failed}, dead {report.dead}")
        if report.contended:
            line += f", {report.contended} partition(s) skipped: another relay is sending them"
        return line + (f" (last error: {report.errors[-1]})" if report.errors else "")
