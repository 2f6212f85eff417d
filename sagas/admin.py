"""Admin for the messaging backbone of every service (outboxes, inboxes, positions, parked messages, dead
letters) and for the saga log (sagas with their step timeline, retry and compensate).

Read-mostly: rows are never edited here; the actions call the services
(requeue dead outbox rows, replay dead letters). Each service's tables are
found by their abstract base, so a new service's tables appear by themselves.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from config.readonly_admin import ReadOnlyAdmin, ReadOnlyAdminMixin
from sagas.definitions import DEFINITIONS
from sagas.inbox import dead_letter_replay, schedule_gap_check
from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)
from sagas.models import Saga, SagaStepAttempt
from sagas.orchestrator import SagaStateError, saga_compensate, saga_retry
from sagas.outbox import outbox_requeue
from sagas.relay import outbox_figures
from sagas.tables import concrete_models


class OutboxAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "aggregate_type", "partition_key", "aggregate_version", "partition", "status",
                    "attempts", "created_at", "sent_at")
    list_filter = ("status", "type", "partition")
    search_fields = ("partition_key", "message_id", "type", "correlation_id")
    actions = ["requeue"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        service = self.model._meta.app_label
        figure = next((f for f in outbox_figures() if f["service"] == service), None)
        title = f"{self.model._meta.verbose_name_plural} of {service}"
        if figure:
            title += (f": {figure['pending']} pending (oldest {figure['oldest_pending_age_seconds']} s), "
                      f"{figure['dead']} dead")
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    @admin.action(description="Requeue selected DEAD rows")
    def requeue(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = outbox_requeue(outbox=self.model, ids=queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} row(s) requeued", messages.SUCCESS if count else messages.WARNING)


class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("id", "consumer", "reason", "type", "aggregate_id", "aggregate_version", "status", "attempts",
                    "created_at", "replayed_at")
    list_filter = ("status", "reason", "consumer", "type")
    search_fields = ("aggregate_id", "message_id", "error")
    actions = ["replay"]

    @admin.action(description="Replay selected dead letters (to their consumer, on their partition queue)")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = dead_letter_replay(app_label=self.model._meta.app_label, ids=queryset.values_list("id", flat=True))
        self.message_user(request, f"{count} dead letter(s) replayed", messages.SUCCESS if count else messages.WARNING)


class InboxAdmin(ReadOnlyAdmin):
    list_display = ("id", "consumer", "type", "message_id", "processed_at")
    list_filter = ("consumer", "type")
    search_fields = ("message_id",)


class PositionAdmin(ReadOnlyAdmin):
    list_display = ("consumer", "aggregate_type", "aggregate_id", "version", "updated_at")
    list_filter = ("consumer", "aggregate_type")
    search_fields = ("aggregate_id",)


class ParkedAdmin(ReadOnlyAdmin):
    list_display = ("consumer", "aggregate_type", "aggregate_id", "aggregate_version", "parked_at",
                    "refetch_requested_at")
    list_filter = ("consumer", "aggregate_type")
    search_fields = ("aggregate_id",)
    actions = ["refetch"]

    @admin.action(description="Ask the producers for the missing versions now")
    def refetch(self, request: HttpRequest, queryset: QuerySet) -> None:
        gaps = set(queryset.values_list("consumer", "aggregate_type", "aggregate_id"))
        for consumer, aggregate_type, aggregate_id in gaps:
            schedule_gap_check(self.model._meta.app_label, consumer, aggregate_type, aggregate_id, countdown=0)
        self.message_user(request, f"{len(gaps)} gap(s) checked and re-fetched", messages.SUCCESS)


ADMINS: dict[type[Model], type[admin.ModelAdmin]] = {
    AbstractOutboxMessage: OutboxAdmin,
    AbstractDeadLetter: DeadLetterAdmin,
    AbstractInboxMessage: InboxAdmin,
    AbstractConsumerPosition: PositionAdmin,
    AbstractParkedMessage: ParkedAdmin,
}

for base, model_admin in ADMINS.items():
    for model in concrete_models(base):
        if not admin.site.is_registered(model):
            admin.site.register(model, model_admin)


class StepAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SagaStepAttempt
    fields = ["name", "kind", "status", "attempt", "started_at", "duration", "worker", "error"]
    readonly_fields = fields
    extra = 0
    ordering = ["started_at", "id"]
    verbose_name_plural = "timeline (one row per attempt)"

    @admin.display(description="duration")
    def duration(self, attempt: SagaStepAttempt) -> str:
        if attempt.finished_at is None:
            return "running" if attempt.status == "RUNNING" else "-"
        return f"{(attempt.finished_at - attempt.started_at).total_seconds() * 1000:.0f} ms"


@admin.register(Saga)
class SagaAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "type", "state", "step_name", "redrives", "created_at", "updated_at", "short_error"]
    list_filter = ["state", "type"]
    search_fields = ["id", "correlation_id"]
    readonly_fields = ["id", "type", "state", "current_step", "payload", "correlation_id", "idempotency_key",
                       "reason", "error", "deadline", "stalled_after", "redrives", "version", "created_at",
                       "updated_at", "finished_at"]
    inlines = [StepAttemptInline]
    actions = ["retry", "compensate"]
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Viewing needs "view"; the actions below need "change" (they are operator interventions).
        return request.user.has_perm("sagas.change_saga")

    @admin.display(description="step")
    def step_name(self, saga: Saga) -> str:
        return DEFINITIONS[saga.type].steps[saga.current_step].name

    @admin.display(description="error")
    def short_error(self, saga: Saga) -> str:
        return saga.error[:80]

    def _each(self, request: HttpRequest, queryset: QuerySet[Saga], operation, verb: str) -> None:
        done = 0
        for saga in queryset:
            try:
                operation(saga)
                done += 1
            except SagaStateError as exc:
                self.message_user(request, f"{saga.id}: {exc}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} saga(s).", messages.SUCCESS)

    @admin.action(description="Retry the compensation of selected FAILED sagas", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        self._each(request, queryset, lambda saga: saga_retry(saga_id=saga.id), "Re-drove")

    @admin.action(description="Compensate selected running or FAILED sagas", permissions=["change"])
    def compensate(self, request: HttpRequest, queryset: QuerySet[Saga]) -> None:
        reason = f"compensated by operator {request.user.get_username()}"
        self._each(request, queryset, lambda saga: saga_compensate(saga_id=saga.id, reason=reason), "Compensating")
