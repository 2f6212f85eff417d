"""`python manage.py bench_leaderboard`: figures for the match-results choreography.

1. Loads a tournament of `--players` players and `--results` results as the
   system would have left it (matches, ledger streams with snapshots, the
   read model's event log, consumer positions), in bulk with COPY.
2. Rebuilds the leaderboard from that log (`leaderboard_rebuild`): rebuild time.
3. Queries the leaderboard: p50/p99 of the selector and of the HTTP API.
4. Loads ledger streams of 1,000 / 10,000 / 100,000 events with and without snapshots.
5. Times the consumers' work per result in-process: domain functions alone, and through the framework.
6. Streams results through the real pipeline at `--rate` results/s for
   `--seconds` (service function → outbox → relay worker → events consumers →
   Score Engine → outbox → relay → leaderboard) and prints the read model's lag.

It starts its own relay worker and event consumers on queues of its own
(`bench.*`), so it neither needs nor disturbs other workers on the broker.
The benchmark is the whole system, so it lives in `config`, outside any service.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.benchmarks import percentile, settings_warning
from config.celery import app as celery_app
from leaderboard.handlers import STANDINGS_CONSUMER
from leaderboard.models import (
    ConsumedEvent,
    ConsumerPosition,
    MatchView,
    Standing,
    TournamentView,
)
from leaderboard.projections import leaderboard_rebuild, standings_apply_many
from leaderboard.selectors import leaderboard_get
from sagas.inbox import deliver_batch
from sagas.messages import Envelope
from sagas.outbox import OutboxStatus
from sagas.partitions import all_partition_queues, partition_for, partition_queue
from sagas.relay import ROW_FIELDS, envelope_of
from sagas.tables import consumer_tables
from scores.ledger import SNAPSHOT_SCHEMA, ledger_load, stream_key
from scores.messages import LedgerOpened, PointsAwarded
from scores.models import LedgerEvent, LedgerSnapshot, ScoredMatch
from scores.models import OutboxMessage as ScoresOutbox
from scores.handlers import MATCH_RESULTS_CONSUMER
from scores.services import ledger_score_matches
from tournament.messages import MatchRecorded, TournamentActivated, TournamentCreated
from tournament.models import Match, Participant, Tournament, TournamentStatus
from tournament.models import OutboxMessage as TournamentOutbox
from tournament.services import match_record

BENCH_PREFIX = "bench"
CLEAN_UP_CHUNK = 5000  # ids per DELETE


def figures(samples: list[float]) -> str:
    return (f"p50 {percentile(samples, .5):8.2f} ms   p99 {percentile(samples, .99):8.2f} ms   "
            f"max {max(samples):8.2f} ms   (n={len(samples)})")


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def copy_rows(alias: str, table: str, columns: Iterable[str], rows: Iterable[tuple]) -> int:
    """COPY rows into a table (the fastest way PostgreSQL takes bulk data), then ANALYZE it."""
    count = 0
    with connections[alias].cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    analyze(alias, table)
    return count


def analyze(alias: str, *tables: str) -> None:
    """Refresh the planner's statistics of bulk-loaded tables, as autovacuum would within a minute or so.

    Measuring before it does would time plans made for the empty tables (sequential scans), not the system.
    """
    with connections[alias].cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def match_points(score_for: int, score_against: int) -> int:
    return 3 if score_for > score_against else 1 if score_for == score_against else 0


class Command(BaseCommand):
    help = "Benchmark the leaderboard read model, the score ledger and the results pipeline; prints p50/p99."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--players", type=int, default=1000)
        parser.add_argument("--results", type=int, default=100_000)
        parser.add_argument("--queries", type=int, default=300, help="leaderboard reads per measurement")
        parser.add_argument("--rates", default="200", help="results per second while streaming (comma-separated: "
                            "one streaming run per rate)")
        parser.add_argument("--producers", type=int, default=4, help="threads recording results while streaming")
        parser.add_argument("--seconds", type=float, default=15.0, help="how long to stream results")
        parser.add_argument("--consumers", type=int, default=None,
                            help="event consumer processes (default: EVENT_CONSUMER_PROCESSES, as consume_events)")
        parser.add_argument("--stream-lengths", default="1000,10000,100000",
                            help="ledger stream lengths to load (comma-separated)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's rows afterwards")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options) -> None:
        try:
            lengths = [int(part) for part in options["stream_lengths"].split(",") if part.strip()]
            rates = [float(part) for part in options["rates"].split(",") if part.strip()]
        except ValueError:
            raise CommandError("--stream-lengths and --rates must be comma-separated numbers", returncode=2) from None
        if (options["players"] < 2 or options["results"] < 1 or options["seconds"] < 0 or options["producers"] < 1
                or any(rate <= 0 for rate in rates) or any(length < 1 for length in lengths)):
            raise CommandError("need --players >= 2, --results >= 1, --seconds >= 0, --producers >= 1, "
                               "positive --rates and --stream-lengths", returncode=2)
        if warning := settings_warning():
            self.say(warning)
        self.rng = random.Random(options["seed"])
        self.tournaments: list[str] = []
        try:
            tournament_id, players = self.load(options["players"], options["results"])
            self.rebuild(tournament_id, options["results"])
            self.query(tournament_id, options["queries"])
            self.ledger_loads(lengths)
            self.consumer_costs(tournament_id, players)
            if options["seconds"] > 0 and rates:
                self.stream(tournament_id, players, rates, options["seconds"], options["consumers"],
                            options["producers"])
        finally:
            if not options["keep"]:
                self.clean_up()

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    # 1. LOAD ---------------------------------------------------------------------------------------------------

    def load(self, player_count: int, result_count: int) -> tuple[str, list[str]]:
        """Write a tournament with its results, ledgers and the read model's log as the pipeline would have."""
        started = time.perf_counter()
        tournament_id = str(uuid.uuid4())
        self.tournaments.append(tournament_id)
        players = [f"bench-{n:05d}" for n in range(player_count)]
        now = timezone.now()
        tournament = Tournament.objects.create(id=tournament_id, name="bench", status=TournamentStatus.ACTIVE,
                                               version=2)
        Participant.objects.bulk_create([Participant(tournament=tournament, player_id=p) for p in players],
                                        batch_size=5000)
        matches = []
        for _ in range(result_count):
            a, b = self.rng.sample(players, 2)
            matches.append((str(uuid.uuid4()), a, b, self.rng.randint(0, 5), self.rng.randint(0, 5)))
        copy_rows("tournament", Match._meta.db_table,
                  ["id", "tournament_id", "player_a", "player_b", "score_a", "score_b", "version", "created_at",
                   "updated_at"],
                  ((m[0], tournament_id, m[1], m[2], m[3], m[4], 1, now, now) for m in matches))

        # The Score Engine's streams: LedgerOpened, then one PointsAwarded per match, snapshots every N.
        versions = dict.fromkeys(players, 1)
        points = dict.fromkeys(players, 0)
        ledger_rows, snapshot_rows, log_rows = [], [], []
        every = settings.SCORES_LEDGER_SNAPSHOT_EVERY
        clock = iter(now + timedelta(microseconds=n) for n in range(10 * result_count + 10 * player_count))

        def log(event, aggregate_id: str, version: int, causation: str = "") -> None:
            at = next(clock)
            log_rows.append((str(uuid.uuid4()), event.TYPE, event.SCHEMA_VERSION, event.AGGREGATE_TYPE,
                             aggregate_id, version, "", causation, at, json.dumps(event.to_payload()),
                             tournament_id, at))

        log(TournamentCreated(tournament_id=tournament_id, name="bench", participants=players), tournament_id, 1)
        log(TournamentActivated(tournament_id=tournament_id), tournament_id, 2)
        for player in players:
            opened = LedgerOpened(tournament_id=tournament_id, player_id=player)
            ledger_rows.append((tournament_id, player, 1, opened.TYPE, 1, json.dumps(opened.to_payload()), "",
                                next(clock)))
            log(opened, stream_key(tournament_id, player), 1)
        scored = []
        for match_id, a, b, score_a, score_b in matches:
            recorded = MatchRecorded(tournament_id=tournament_id, match_id=match_id, player_a=a, player_b=b,
                                     score_a=score_a, score_b=score_b)
            message_id = str(uuid.uuid4())
            at = next(clock)
            log_rows.append((message_id, recorded.TYPE, 1, recorded.AGGREGATE_TYPE, match_id, 1, "", "", at,
                             json.dumps(recorded.to_payload()), tournament_id, at))
            earned = {a: match_points(score_a, score_b), b: match_points(score_b, score_a)}
            scored.append((match_id, tournament_id, 1, a, b, earned[a], earned[b], now))
            for player in sorted(earned):
                versions[player] += 1
                points[player] += earned[player]
                award = PointsAwarded(tournament_id=tournament_id, player_id=player, match_id=match_id,
                                      points=earned[player], reason={3: "win", 1: "draw", 0: "loss"}[earned[player]])
                recorded_at = next(clock)
                ledger_rows.append((tournament_id, player, versions[player], award.TYPE, award.SCHEMA_VERSION,
                                    json.dumps(award.to_payload()), message_id, recorded_at))
                log(award, stream_key(tournament_id, player), versions[player], causation=message_id)
                if versions[player] % every == 0:
                    snapshot_rows.append(self.snapshot_row(tournament_id, player, versions[player], points[player],
                                                           recorded_at))
        self.copy_ledger(ledger_rows, snapshot_rows)
        copy_rows("scores", ScoredMatch._meta.db_table,
                  ["match_id", "tournament_id", "version", "player_a", "player_b", "points_a", "points_b",
                   "updated_at"], scored)
        copy_rows("leaderboard", ConsumedEvent._meta.db_table,
                  ["message_id", "type", "schema_version", "aggregate_type", "aggregate_id", "aggregate_version",
                   "correlation_id", "causation_id", "occurred_at", "payload", "tournament_id", "applied_at"],
                  log_rows)
        # What the framework and the relay remember of that history: the consumer's position per stream, and
        # each stream's newest outbox row as SENT (the relay sends version n+1 once version n has left).
        ConsumerPosition.objects.bulk_create(
            [ConsumerPosition(consumer=STANDINGS_CONSUMER, aggregate_type=TournamentCreated.AGGREGATE_TYPE,
                              aggregate_id=tournament_id, version=2)]
            + [ConsumerPosition(consumer=STANDINGS_CONSUMER, aggregate_type=LedgerOpened.AGGREGATE_TYPE,
                                aggregate_id=stream_key(tournament_id, p), version=versions[p]) for p in players],
            batch_size=5000)
        ScoresOutbox.objects.bulk_create(
            [ScoresOutbox(type=PointsAwarded.TYPE, schema_version=PointsAwarded.SCHEMA_VERSION,
                          aggregate_type=PointsAwarded.AGGREGATE_TYPE, partition_key=stream_key(tournament_id, p),
                          partition=partition_for(stream_key(tournament_id, p)), aggregate_version=versions[p],
                          occurred_at=now, payload={}, status=OutboxStatus.SENT, sent_at=now) for p in players],
            batch_size=5000)
        analyze("tournament", Participant._meta.db_table)
        analyze("scores", ScoresOutbox._meta.db_table)
        analyze("leaderboard", ConsumerPosition._meta.db_table)
        self.say(f"load: {player_count} players, {result_count} results, {len(ledger_rows)} ledger events, "
                 f"{len(snapshot_rows)} snapshots, {len(log_rows)} read-model log events "
                 f"in {time.perf_counter() - started:.1f}s")
        return tournament_id, players

    @staticmethod
    def snapshot_row(tournament_id: str, player: str, version: int, points: int, recorded_at: datetime) -> tuple:
        state = {"tournament_id": tournament_id, "player_id": player, "status": "OPEN", "points": points,
                 "version": version}
        return (tournament_id, player, version, SNAPSHOT_SCHEMA, json.dumps(state), recorded_at)

    @staticmethod
    def copy_ledger(ledger_rows: list[tuple], snapshot_rows: list[tuple]) -> None:
        copy_rows("scores", LedgerEvent._meta.db_table,
                  ["tournament_id", "player_id", "version", "type", "schema_version", "payload", "causation_id",
                   "recorded_at"], ledger_rows)
        copy_rows("scores", LedgerSnapshot._meta.db_table,
                  ["tournament_id", "player_id", "version", "schema", "state", "recorded_at"], snapshot_rows)

    # 2. REBUILD ------------------------------------------------------------------------------------------------

    def rebuild(self, tournament_id: str, result_count: int) -> None:
        started = time.perf_counter()
        count = leaderboard_rebuild(tournament_id=tournament_id)
        elapsed = time.perf_counter() - started
        played = sum(row["played"] for row in leaderboard_get(tournament_id=tournament_id).standings)
        if played != 2 * result_count:
            raise CommandError(f"rebuild counted {played} appearances, expected {2 * result_count}")
        self.say(f"rebuild_leaderboard: {count} events replayed in {elapsed:.1f}s "
                 f"({count / elapsed:,.0f} events/s)")

    # 3. QUERY --------------------------------------------------------------------------------------------------

    def query(self, tournament_id: str, queries: int) -> None:
        user, _ = get_user_model().objects.get_or_create(username="bench-reader")
        token, _ = Token.objects.get_or_create(user=user)
        client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
        url = f"/api/tournaments/{tournament_id}/leaderboard/"
        for _ in range(10):  # warm connections and caches
            client.get(url)
        selector = [timed_ms(lambda: leaderboard_get(tournament_id=tournament_id)) for _ in range(queries)]
        http = [timed_ms(lambda: client.get(url)) for _ in range(queries)]
        assert client.get(url).status_code == 200
        rows = len(leaderboard_get(tournament_id=tournament_id).standings)
        self.say(f"leaderboard query, selector ({rows} rows): {figures(selector)}")
        self.say(f"leaderboard query, GET {url.replace(tournament_id, '{id}')} (in-process HTTP, JSON): "
                 f"{figures(http)}")

    # 4. LEDGER LOADS -------------------------------------------------------------------------------------------

    def ledger_loads(self, lengths: list[int]) -> None:
        every = settings.SCORES_LEDGER_SNAPSHOT_EVERY
        for length in lengths:
            tournament_id, player = str(uuid.uuid4()), "bench-long"
            self.tournaments.append(tournament_id)
            now = timezone.now()
            rows, snapshots, points = [], [], 0
            opened = LedgerOpened(tournament_id=tournament_id, player_id=player)
            rows.append((tournament_id, player, 1, opened.TYPE, 1, json.dumps(opened.to_payload()), "", now))
            for version in range(2, length + 1):
                earned = self.rng.choice((0, 1, 3))
                points += earned
                award = PointsAwarded(tournament_id=tournament_id, player_id=player, match_id=str(version),
                                      points=earned, reason="win")
                at = now + timedelta(microseconds=version)
                rows.append((tournament_id, player, version, award.TYPE, 2, json.dumps(award.to_payload()), "", at))
                if version % every == 0:
                    snapshots.append(self.snapshot_row(tournament_id, player, version, points, at))
            self.copy_ledger(rows, snapshots)
            repeats = max(3, min(50, 200_000 // length))
            full = [timed_ms(lambda: ledger_load(tournament_id=tournament_id, player_id=player,
                                                 use_snapshots=False)) for _ in range(repeats)]
            snap = [timed_ms(lambda: ledger_load(tournament_id=tournament_id, player_id=player))
                    for _ in range(50)]
            assert ledger_load(tournament_id=tournament_id, player_id=player) == ledger_load(
                tournament_id=tournament_id, player_id=player, use_snapshots=False)
            self.say(f"ledger load, {length:>7,}-event stream: full replay p50 {percentile(full, .5):8.2f} ms; "
                     f"from snapshot (every {every}) p50 {percentile(snap, .5):6.2f} ms, "
                     f"p99 {percentile(snap, .99):6.2f} ms")

    # 5. CONSUMER COST -----------------------------------------------------------------------------------------

    def consumer_costs(self, tournament_id: str, players: list[str], results: int = 150) -> None:
        """Time the work one result causes downstream, in this process, in runs of 1, 10 and 50 results as the
        consumers get them: the domain consumers alone (`ledger_score_matches`, `standings_apply_many`), then the
        same through the messaging framework's `deliver_batch` (inbox, per-aggregate positions, parking)."""
        settings.OUTBOX_RELAY_QUEUE = f"{BENCH_PREFIX}.relay"  # kicks wait there until the bench's relay starts

        def recorded() -> list[Envelope]:
            first = TournamentOutbox.objects.order_by("-id").values_list("id", flat=True).first() or 0
            for _ in range(results):
                a, b = self.rng.sample(players, 2)
                match_record(tournament_id=tournament_id, player_a=a, player_b=b, score_a=self.rng.randint(0, 5),
                             score_b=self.rng.randint(0, 5))
            rows = TournamentOutbox.objects.filter(id__gt=first, type=MatchRecorded.TYPE).order_by("id")
            return [Envelope.from_dict(envelope_of(row)) for row in rows.values(*ROW_FIELDS)]

        def caused_by(envelopes: list[Envelope]) -> list[Envelope]:
            rows = ScoresOutbox.objects.filter(causation_id__in=[e.message_id for e in envelopes]).order_by("id")
            return [Envelope.from_dict(envelope_of(row)) for row in rows.values(*ROW_FIELDS)]

        def per_result_ms(size: int, score: Callable[[list[Envelope]], object],
                          board: Callable[[list[Envelope], list[Envelope]], object]) -> float:
            envelopes, points, elapsed = recorded(), [], 0.0
            for start in range(0, len(envelopes), size):
                run = envelopes[start:start + size]
                elapsed += timed_ms(lambda: score(run))
                caused = caused_by(run)
                elapsed += timed_ms(lambda: board(run, caused))
                points += caused
            # Untimed: bring the consumers' positions up to these events, as the relay would have, and mark them
            # sent. The domain alone leaves the positions behind; the next run's events would then park behind
            # them, and the framework's figure would time the parking, not the usual path.
            deliver_batch([e.to_dict() for e in envelopes])
            deliver_batch([e.to_dict() for e in points])
            for outbox, column in ((TournamentOutbox, "message_id"), (ScoresOutbox, "causation_id")):
                outbox.objects.filter(**{f"{column}__in": [e.message_id for e in envelopes]}).update(
                    status=OutboxStatus.SENT, sent_at=timezone.now())
            return elapsed / len(envelopes)

        for size in (1, 10, 50):
            domain = per_result_ms(size, lambda run: ledger_score_matches(envelopes=run),
                                   lambda run, points: standings_apply_many(envelopes=run + points))
            framework = per_result_ms(size, lambda run: deliver_batch([e.to_dict() for e in run]),
                                      lambda run, points: deliver_batch([e.to_dict() for e in points]))
            self.say(f"consumer cost per result in runs of {size:>2}: domain alone {domain:5.2f} ms, through the "
                     f"framework {framework:5.2f} ms (one process: ~{1000 / framework:,.0f} results/s)")

    # 6. STREAMING LAG ------------------------------------------------------------------------------------------

    def stream(self, tournament_id: str, players: list[str], rates: list[float], seconds: float,
               consumers: int | None, producers: int) -> None:
        settings.OUTBOX_RELAY_QUEUE = f"{BENCH_PREFIX}.relay"
        settings.EVENT_QUEUE_PREFIX = f"{BENCH_PREFIX}.events"
        workers = Workers(consumers or settings.EVENT_CONSUMER_PROCESSES)
        try:
            workers.start()
            self.wait_until_idle(workers.queues)
            for rate in rates:
                started = timezone.now()
                total = int(rate * seconds)
                achieved = self.produce(tournament_id, players, rate, total, producers)
                self.say(f"streaming at {rate:.0f} results/s for {seconds:.0f}s: {total} results recorded at "
                         f"{achieved:.0f}/s by {producers} producer thread(s); {workers.consumers} event "
                         f"consumer process(es), 1 relay worker")
                drained = self.wait_for_pipeline(tournament_id, started, total)
                self.say(f"  pipeline drained {drained:.1f}s after the last result was recorded")
                self.report_lag(tournament_id, started)
        finally:
            workers.stop()

    def wait_until_idle(self, queues: list[str], timeout: float = 120, quiet_for: float = 1.0) -> None:
        """Let the relay and consumers finish earlier work first, so the lag measures only the streamed results.

        Idle: no PENDING outbox row and no message waiting on the bench's queues, for `quiet_for` seconds on end
        (a message being applied has left its queue; the last one is done once the quiet time passes).
        """
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        with celery_app.connection_for_write() as connection:
            channel = connection.default_channel
            while time.monotonic() - quiet_since < quiet_for:
                if time.monotonic() > deadline:
                    raise CommandError("the pipeline did not drain before streaming: are the workers running?")
                busy = (TournamentOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
                        or ScoresOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
                        or any(channel.queue_declare(queue=queue).message_count for queue in queues))
                if busy:
                    quiet_since = time.monotonic()
                time.sleep(0.1)

    def produce(self, tournament_id: str, players: list[str], rate: float, total: int, producers: int) -> float:
        """Record `total` results at `rate` per second through `match_record`, spread over producer threads."""
        begin = time.perf_counter()
        errors: list[BaseException] = []

        def run(offset: int) -> None:
            rng = random.Random(offset)
            try:
                for n in range(offset, total, producers):
                    delay = begin + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    a, b = rng.sample(players, 2)
                    match_record(tournament_id=tournament_id, player_a=a, player_b=b, score_a=rng.randint(0, 5),
                                 score_b=rng.randint(0, 5))
            except BaseException as exc:  # reported by the caller
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise CommandError(f"recording results failed: {errors[0]!r}")
        return total / (time.perf_counter() - begin)

    def wait_for_pipeline(self, tournament_id: str, since: datetime, total: int) -> float:
        """Wait until the leaderboard has applied every streamed result and both of its points events."""
        started = time.monotonic()
        timeout = max(180.0, total / 5)
        log = ConsumedEvent.objects.filter(tournament_id=tournament_id, occurred_at__gte=since)
        while True:
            results = log.filter(type=MatchRecorded.TYPE).count()
            points = log.filter(type=PointsAwarded.TYPE).count()
            if results >= total and points >= 2 * total:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise CommandError(f"after {timeout:.0f}s the leaderboard has {results}/{total} results and "
                                   f"{points}/{2 * total} points events: is the pipeline stuck?")
            time.sleep(0.2)

    def report_lag(self, tournament_id: str, since: datetime) -> None:
        """Print, per streamed result, how long it took to reach the board, and with its points."""
        log = ConsumedEvent.objects.filter(tournament_id=tournament_id, occurred_at__gte=since)
        results = {str(message_id): (occurred, applied) for message_id, occurred, applied in log.filter(
            type=MatchRecorded.TYPE).values_list("message_id", "occurred_at", "applied_at")}
        points_applied: dict[str, datetime] = {}
        for causation_id, applied in log.filter(type=PointsAwarded.TYPE).values_list("causation_id", "applied_at"):
            points_applied[causation_id] = max(applied, points_applied.get(causation_id, applied))
        on_board = [(applied - occurred).total_seconds() * 1000 for occurred, applied in results.values()]
        with_points = [(max(applied, points_applied[message_id]) - occurred).total_seconds() * 1000
                       for message_id, (occurred, applied) in results.items()]
        self.say(f"  read-model lag, result on the board (Match Engine → leaderboard):            {figures(on_board)}")
        self.say(f"  read-model lag, result and its points (→ Score Engine → leaderboard):         "
                 f"{figures(with_points)}")

    # CLEAN-UP --------------------------------------------------------------------------------------------------

    def clean_up(self) -> None:
        started = time.perf_counter()
        for tournament_id in self.tournaments:
            # The consumers' bookkeeping first, found through the events the benchmark sent: inbox rows by message
            # id, positions by aggregate (a match's id does not name its tournament). Left behind, they grew the
            # inboxes of every later run.
            outboxes = (TournamentOutbox.objects.filter(payload__tournament_id=tournament_id),
                        ScoresOutbox.objects.filter(partition_key__startswith=f"{tournament_id}/"))
            events = [row for rows in outboxes for row in rows.values_list("message_id", "partition_key")]
            for app_label, consumer in (("scores", MATCH_RESULTS_CONSUMER), ("leaderboard", STANDINGS_CONSUMER)):
                tables = consumer_tables(app_label)
                keyed = [Q(aggregate_id__startswith=tournament_id)]  # the tournament's and its ledgers' (loaded too)
                for start in range(0, len(events), CLEAN_UP_CHUNK):
                    chunk = events[start:start + CLEAN_UP_CHUNK]
                    tables.inbox.objects.using(app_label).filter(
                        consumer=consumer, message_id__in=[message_id for message_id, _ in chunk]).delete()
                    keyed.append(Q(aggregate_id__in={key for _, key in chunk}))
                for model in (tables.position, tables.parked):
                    for condition in keyed:
                        model.objects.using(app_label).filter(condition, consumer=consumer).delete()
            for rows in outboxes:
                rows.delete()
            Tournament.objects.filter(id=tournament_id).delete()
            for model in (LedgerEvent, LedgerSnapshot, ScoredMatch):
                model.objects.filter(tournament_id=tournament_id).delete()
            for model in (ConsumedEvent, Standing, MatchView, TournamentView):
                model.objects.filter(tournament_id=tournament_id).delete()
        self.say(f"cleaned up the benchmark's rows in {time.perf_counter() - started:.1f}s (--keep keeps them)")


class Workers:
    """The bench's own relay worker and event consumers, on queues named `bench.*`."""

    def __init__(self, consumers: int) -> None:
        self.consumers = max(1, min(consumers, settings.EVENT_PARTITIONS))
        self.processes: list[subprocess.Popen] = []
        self.hostnames: list[str] = []
        self.queues = [settings.OUTBOX_RELAY_QUEUE, *all_partition_queues()]

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "OUTBOX_RELAY_QUEUE": settings.OUTBOX_RELAY_QUEUE,
               "EVENT_QUEUE_PREFIX": settings.EVENT_QUEUE_PREFIX}
        host = socket.gethostname()
        relay = f"{BENCH_PREFIX}-relay-{os.getpid()}@{host}"
        self.spawn(["-m", "celery", "-A", "config", "worker", "-Q", settings.OUTBOX_RELAY_QUEUE, "-c", "1",
                    "-n", relay, "--without-gossip", "--without-mingle", "--loglevel=WARNING"], env)
        self.hostnames.append(relay)
        partitions = list(range(settings.EVENT_PARTITIONS))
        for n in range(self.consumers):
            mine = partitions[n::self.consumers]
            queues = ",".join(partition_queue(p) for p in mine)
            name = f"{BENCH_PREFIX}-events-{n}-{os.getpid()}@{host}"
            self.spawn(["-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1", "--prefetch-multiplier",
                        "1", "-n", name, "--without-gossip", "--without-mingle", "--loglevel=WARNING"], env)
            self.hostnames.append(name)
        deadline = time.monotonic() + timeout
        while len(celery_app.control.ping(destination=self.hostnames, timeout=1.0)) < len(self.hostnames):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise CommandError("the benchmark's workers did not start")

    def spawn(self, argv: list[str], env: dict[str, str]) -> None:
        self.processes.append(subprocess.Popen([sys.executable, *argv], cwd=settings.BASE_DIR, env=env,
                                               start_new_session=True, stdout=subprocess.DEVNULL))

    def stop(self) -> None:
        """Warm shutdown of each worker (SIGTERM to its main process); SIGKILL what is left of its group."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
