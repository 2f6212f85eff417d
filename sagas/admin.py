"""Operators' view of the saga log: read-only, with retry and compensate actions that call the orchestrator."""
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sagas.definitions import DEFINITIONS
from sagas.models import Saga, SagaStepAttempt
from sagas.orchestrator import SagaStateError, saga_compensate, saga_retry


class ReadOnlyAdminMixin:
    """Infrastructure rows change only through services, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


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
