"""The leaderboard projection: standings built only from events, never from another service's tables.

Sources: the Match Engine's tournament and match events (who takes part,
results) and the Score Engine's ledger events (points, so the points rule
lives only in the Score Engine). Each event is first stored in the read
model's own log (`ConsumedEvent`); that copy is the idempotency check (one row
per message and per aggregate version) and the history `leaderboard_rebuild`
replays, so a rebuild never asks another service for anything.

The projection is correct under duplicates and any order, even without the
messaging framework's per-aggregate ordering:
- a match event carries the whole result: the newest version replaces the
  older one's contribution, an older version arriving later is ignored;
- ledger events are increments of points, applied once each (the log's
  unique version), and addition does not care about order;
- a tournament's status follows its newest event; the facts a
  TournamentCreated brings (name, participants) are added whenever it comes.

One projection, two stores: `TableStore` folds a run of consumed events over
the rows they touch, loaded and locked, and writes them back (live
consumption); `MemoryStore` folds a whole history from nothing and writes the
result in bulk (rebuild). The rules are written once, in the projectors.
"""
from __future__ import annotations

import dataclasses
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Protocol

from django.db import connections, transaction
from django.utils import timezone

from config.raw_sql import pg_array, update_rows
from leaderboard.models import ConsumedEvent, MatchView, Standing, TournamentView
from sagas.messages import Envelope
from scores.messages import LedgerClosed, LedgerOpened, PointsAwarded, PointsRevoked
from tournament.messages import (
    MatchCorrected,
    MatchRecorded,
    TournamentActivated,
    TournamentCancelled,
    TournamentCompleted,
    TournamentCreated,
)

ALIAS = "leaderboard"
TOURNAMENT_STATUS = {
    TournamentCreated.TYPE: "PENDING",
    TournamentActivated.TYPE: "ACTIVE",
    TournamentCancelled.TYPE: "CANCELLED",
    TournamentCompleted.TYPE: "COMPLETED",
}


@dataclasses.dataclass(frozen=True)
class Line:
    """A change to one player's standing (or a whole standing: the sum of its changes)."""

    points: int = 0
    played: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    score_for: int = 0
    score_against: int = 0

    def __add__(self, other: Line) -> Line:
        return Line(*map(operator.add, line_values(self), line_values(other)))

    def __neg__(self) -> Line:
        return Line(*map(operator.neg, line_values(self)))


LINE_FIELDS = [field.name for field in dataclasses.fields(Line)]
# What dataclasses.astuple gives, without its deep copy: the fold adds lines for every event, and astuple was
# the largest single cost of a consumer's Python time.
line_values: Callable[[Line], tuple[int, ...]] = operator.attrgetter(*LINE_FIELDS)


def result_line(score_for: int, score_against: int) -> Line:
    """Return what one match adds to a player's line (points come from the Score Engine, not from here)."""
    return Line(played=1, wins=int(score_for > score_against), draws=int(score_for == score_against),
                losses=int(score_for < score_against), score_for=score_for, score_against=score_against)


class Store(Protocol):
    def tournament(self, tournament_id: str) -> TournamentView: ...
    def save_tournament(self, view: TournamentView) -> None: ...
    def match(self, match_id: str, tournament_id: str) -> MatchView: ...
    def save_match(self, view: MatchView) -> None: ...
    def add_lines(self, tournament_id: str, lines: dict[str, Line]) -> None: ...


# PROJECTORS: how each event type changes the read model.

def project_tournament(store: Store, envelope: Envelope) -> None:
    payload = envelope.payload
    view = store.tournament(payload["tournament_id"])
    if envelope.type == TournamentCreated.TYPE:
        view.name = payload["name"]
        store.add_lines(payload["tournament_id"], {player_id: Line() for player_id in payload["participants"]})
    if envelope.aggregate_version > view.version:
        view.version, view.status = envelope.aggregate_version, TOURNAMENT_STATUS[envelope.type]
    store.save_tournament(view)


def project_match(store: Store, envelope: Envelope) -> None:
    payload = envelope.payload
    view = store.match(payload["match_id"], payload["tournament_id"])
    if envelope.aggregate_version <= view.version:
        return  # a repeated or superseded version of the result
    lines: dict[str, Line] = defaultdict(Line)
    if view.version:
        lines[view.player_a] += -result_line(view.score_a, view.score_b)
        lines[view.player_b] += -result_line(view.score_b, view.score_a)
    lines[payload["player_a"]] += result_line(payload["score_a"], payload["score_b"])
    lines[payload["player_b"]] += result_line(payload["score_b"], payload["score_a"])
    view.version = envelope.aggregate_version
    view.player_a, view.player_b = payload["player_a"], payload["player_b"]
    view.score_a, view.score_b = payload["score_a"], payload["score_b"]
    store.save_match(view)
    store.add_lines(payload["tournament_id"], lines)


def points_projector(sign: int) -> Callable[[Store, Envelope], None]:
    def project_points(store: Store, envelope: Envelope) -> None:
        payload = envelope.payload
        store.add_lines(payload["tournament_id"], {payload["player_id"]: Line(points=sign * payload["points"])})
    return project_points


def project_ledger_opened(store: Store, envelope: Envelope) -> None:
    store.add_lines(envelope.payload["tournament_id"], {envelope.payload["player_id"]: Line()})


def project_nothing(store: Store, envelope: Envelope) -> None:
    """Keep the event in the log only: the framework orders a stream's events, so the read model takes them all."""


PROJECTORS: dict[str, Callable[[Store, Envelope], None]] = {
    **dict.fromkeys(TOURNAMENT_STATUS, project_tournament),
    MatchRecorded.TYPE: project_match,
    MatchCorrected.TYPE: project_match,
    LedgerOpened.TYPE: project_ledger_opened,
    PointsAwarded.TYPE: points_projector(+1),
    PointsRevoked.TYPE: points_projector(-1),
    LedgerClosed.TYPE: project_nothing,
}
CONSUMED_TYPES = tuple(PROJECTORS)


class MemoryStore:
    """Folds events in memory; `flush` writes the resulting tables in bulk."""

    def __init__(self) -> None:
        self.tournaments: dict[str, TournamentView] = {}
        self.matches: dict[str, MatchView] = {}
        self.lines: dict[tuple[str, str], Line] = defaultdict(Line)

    def tournament(self, tournament_id: str) -> TournamentView:
        return self.tournaments.setdefault(tournament_id, TournamentView(tournament_id=tournament_id))

    def save_tournament(self, view: TournamentView) -> None:
        self.tournaments[str(view.tournament_id)] = view

    def match(self, match_id: str, tournament_id: str) -> MatchView:
        return self.matches.setdefault(match_id, MatchView(match_id=match_id, tournament_id=tournament_id, version=0,
                                                           player_a="", player_b="", score_a=0, score_b=0))

    def save_match(self, view: MatchView) -> None:
        self.matches[str(view.match_id)] = view

    def add_lines(self, tournament_id: str, lines: dict[str, Line]) -> None:
        for player_id, line in lines.items():
            self.lines[(tournament_id, player_id)] += line

    def flush(self) -> None:
        TournamentView.objects.using(ALIAS).bulk_create(self.tournaments.values(), batch_size=5000)
        MatchView.objects.using(ALIAS).bulk_create(self.matches.values(), batch_size=5000)
        Standing.objects.using(ALIAS).bulk_create(
            (Standing(tournament_id=tournament_id, player_id=player_id, **dataclasses.asdict(line),
                      score_difference=line.score_for - line.score_against)
             for (tournament_id, player_id), line in self.lines.items()),
            batch_size=5000,
        )


class TableStore(MemoryStore):
    """Folds a run of events in memory over the rows they touch, loaded and locked first; `flush` writes it back.

    Live consumption: a handful of statements per run of events, however long.
    """

    def __init__(self, envelopes: list[Envelope]) -> None:
        super().__init__()
        tournaments = {envelope.payload["tournament_id"] for envelope in envelopes
                       if envelope.type in TOURNAMENT_STATUS}
        matches = {envelope.payload["match_id"]: envelope.payload["tournament_id"] for envelope in envelopes
                   if envelope.type in (MatchRecorded.TYPE, MatchCorrected.TYPE)}
        self.tournaments = {str(view.tournament_id): view for view in _locked(
            TournamentView, [TournamentView(tournament_id=tournament_id) for tournament_id in sorted(tournaments)])}
        self.matches = {str(view.match_id): view for view in _locked(MatchView, [
            MatchView(match_id=match_id, tournament_id=matches[match_id], version=0, player_a="", player_b="",
                      score_a=0, score_b=0) for match_id in sorted(matches)])}
        self.changed: set[tuple[type, str]] = set()

    def save_tournament(self, view: TournamentView) -> None:
        super().save_tournament(view)
        self.changed.add((TournamentView, str(view.tournament_id)))

    def save_match(self, view: MatchView) -> None:
        super().save_match(view)
        self.changed.add((MatchView, str(view.match_id)))

    def flush(self) -> None:
        for model, views, fields in ((TournamentView, self.tournaments, ["name", "status", "version"]),
                                     (MatchView, self.matches, ["version", "player_a", "player_b", "score_a",
                                                                "score_b"])):
            if changed := [view for key, view in views.items() if (model, key) in self.changed]:
                update_rows(changed, fields, using=ALIAS)
        self._add_lines()

    def _add_lines(self) -> None:
        """Add each line to its standing (creating it), in player order so concurrent runs never deadlock."""
        lines = sorted(self.lines.items())
        if not lines:
            return
        table = Standing._meta.db_table
        columns = LINE_FIELDS + ["score_difference"]
        rows = [[tournament_id, player_id, *line_values(line), line.score_for - line.score_against]
                for (tournament_id, player_id), line in lines]
        updates = ", ".join(f"{column} = {table}.{column} + EXCLUDED.{column}" for column in columns)
        casts = ["uuid", "varchar"] + ["bigint"] * len(columns)
        with connections[ALIAS].prepared_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (tournament_id, player_id, {', '.join(columns)}) SELECT * FROM unnest("
                + ", ".join(f"%s::{cast}[]" for cast in casts)
                + f") ON CONFLICT (tournament_id, player_id) DO UPDATE SET {updates}",
                [pg_array(column) for column in zip(*rows, strict=True)],
            )


def _locked(model: type, rows: list) -> list:
    """Create the missing rows (as given) and lock them all, in one upsert, in the order given; return them."""
    if not rows:
        return []
    meta, connection = model._meta, connections[ALIAS]
    fields = meta.concrete_fields
    columns = ", ".join(field.column for field in fields)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    return list(model.objects.using(ALIAS).raw(
        f"INSERT INTO {meta.db_table} ({columns}) VALUES {placeholders}"
        f" ON CONFLICT ({meta.pk.column}) DO UPDATE SET {meta.pk.column} = EXCLUDED.{meta.pk.column}"
        f" RETURNING {columns}",
        [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows for field in fields]))


def events_record(envelopes: list[Envelope]) -> list[Envelope]:
    """Store the events in the read model's log, in order; return those that were not there yet (not duplicates)."""
    first: dict[str, Envelope] = {}
    for envelope in envelopes:
        first.setdefault(envelope.message_id, envelope)
    fresh = list(first.values())
    if not fresh:
        return []
    columns = {"message_id": "uuid", "type": "varchar", "schema_version": "smallint", "aggregate_type": "varchar",
               "aggregate_id": "varchar", "aggregate_version": "int", "correlation_id": "varchar",
               "causation_id": "varchar", "occurred_at": "timestamptz", "payload": "jsonb", "tournament_id": "uuid"}
    values = [pg_array(getattr(envelope, name) for envelope in fresh) for name in list(columns)[:-2]]
    values += [pg_array(envelope.payload for envelope in fresh),
               pg_array(envelope.payload["tournament_id"] for envelope in fresh)]
    with connections[ALIAS].prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ConsumedEvent._meta.db_table} ({', '.join(columns)}, applied_at)"
            f" SELECT {', '.join(f'k.{name}' for name in columns)}, %s FROM unnest("
            + ", ".join(f"%s::{cast}[]" for cast in columns.values())
            + f") WITH ORDINALITY AS k({', '.join(columns)}, n) ORDER BY k.n"
            " ON CONFLICT DO NOTHING RETURNING message_id",
            [timezone.now(), *values])
        recorded = {str(message_id) for message_id, in cursor.fetchall()}
    return [envelope for envelope in fresh if envelope.message_id in recorded]


@transaction.atomic(using=ALIAS)
def standings_apply_many(*, envelopes: list[Envelope]) -> int:
    """Record the events in the read model's log and project the new ones; return how many were new.

    Called at least once, in any order. The rows the events touch are locked
    and folded in memory (`TableStore`), then written back in bulk.
    """
    fresh = events_record(envelopes)
    if fresh:
        store = TableStore(fresh)
        for envelope in fresh:
            PROJECTORS[envelope.type](store, envelope)
        store.flush()
    return len(fresh)


def envelope_from_log(event: ConsumedEvent) -> Envelope:
    return Envelope(message_id=str(event.message_id), type=event.type, schema_version=event.schema_version,
                    aggregate_type=event.aggregate_type, aggregate_id=event.aggregate_id,
                    aggregate_version=event.aggregate_version, correlation_id=event.correlation_id,
                    causation_id=event.causation_id, occurred_at=event.occurred_at.isoformat(),
                    payload=event.payload)


def standings_fold(envelopes: Iterable[Envelope]) -> MemoryStore:
    """Fold a history of events into a fresh in-memory read model."""
    store = MemoryStore()
    for envelope in envelopes:
        PROJECTORS[envelope.type](store, envelope)
    return store


@transaction.atomic(using=ALIAS, durable=True)
def leaderboard_rebuild(*, tournament_id: str | None = None) -> int:
    """Drop the projections (of one tournament, or all) and replay them from the read model's log; return the count.

    The log table is locked in EXCLUSIVE mode for the rebuild: readers go on
    reading the old standings, while consumers (whose first step inserts into
    the log) wait, then apply their event on top of the rebuilt tables. So an
    event is never lost between the replay's read and its commit.
    """
    with connections[ALIAS].cursor() as cursor:
        cursor.execute(f"LOCK TABLE {ConsumedEvent._meta.db_table} IN EXCLUSIVE MODE")
    scope = {"tournament_id": tournament_id} if tournament_id else {}
    for model in (Standing, MatchView, TournamentView):
        model.objects.using(ALIAS).filter(**scope).delete()
    history = ConsumedEvent.objects.using(ALIAS).filter(**scope).order_by("id")
    count = 0

    def replay() -> Iterable[Envelope]:
        nonlocal count
        for event in history.iterator(chunk_size=10_000):
            count += 1
            yield envelope_from_log(event)

    standings_fold(replay()).flush()
    # The replay rewrote the tables wholesale. Consumers resume the moment it commits; with the statistics of
    # the old tables the planner turns their one-row updates into sequential scans (100 ms each on 100,000
    # match views, measured) until autovacuum catches up, so ANALYZE them now, before consumers resume.
    with connections[ALIAS].cursor() as cursor:
        for model in (Standing, MatchView, TournamentView):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return count
