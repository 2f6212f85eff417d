"""Admin for the messaging backbone of every service: outboxes, inboxes, positions, parked messages, dead letters.

Read-mostly: rows are never edited here; the actions call the services
(requeue dead outbox rows, replay dead letters). Each service's tables are
found by their abstract base, so a new service's tables appear by themselves.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from sagas.inbox import dead_letter_replay, schedule_gap_check
from sagas.messaging_models import (
    AbstractConsumerPosition,
    AbstractDeadLetter,
    AbstractInboxMessage,
    AbstractOutboxMessage,
    AbstractParkedMessage,
)
from sagas.outbox import outbox_requeue
from sagas.relay import outbox_figures
from sagas.tables import concrete_models


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


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
