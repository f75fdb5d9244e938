"""The admin site's pages for computations, workflows, the audit trail, the queues and workers, and schedules:
read-only but for new schedules, acting only through the services and the controls."""

import time
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from dashboard.computations.forms import error_text, operation_choices
from dashboard.schedules.schedule_form import check_when
from dashboard.web import access, submitting, throttling
from dashboard.web.redirects import see_other
from tasks import control, presence, queues, scheduling, services
from tasks.models import (
    ApiToken,
    AuditEntry,
    Computation,
    Schedule,
    ScheduleRun,
    Webhook,
    WebhookDelivery,
    Workflow,
)
from tasks.operations import REGISTRY, OperationError
from tasks.webhooks import registering


def _selection(queryset: QuerySet[Computation]) -> services.Selection:
    return services.Selection(ids=list(queryset.values_list("pk", flat=True)[: services.BULK_CAP]))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the admin shows and never adds, edits or deletes: they change through the services alone."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Computation)
class ComputationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "operation",
        "status",
        "progress",
        "owner",
        "created_at",
        "run_time",
        "attempts",
        "worker",
        "flower",
    ]
    list_select_related = ["owner"]
    list_filter = ["status", "operation", "created_at", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "=task_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_per_page = 50
    # The row changes only through its transitions (tasks.services), never by hand, and is not deleted here.
    readonly_fields = [field.name for field in Computation._meta.fields] + ["flower"]
    actions = ["cancel", "retry"]

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return access.may_operate(request.user)

    @admin.display(description=_("run time"))
    def run_time(self, computation: Computation) -> str:
        if computation.run_time is None:
            return "—"
        return gettext("%(seconds)s s") % {"seconds": f"{computation.run_time.total_seconds():.3f}"}

    @admin.display(description=_("Flower"))
    def flower(self, computation: Computation) -> str:
        return format_html('<a href="/flower/task/{}">{}</a>', computation.task_id, _("task in Flower"))

    @admin.action(description=_("Cancel the selected computations"), permissions=["operate"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Computation]) -> None:
        actor = access.actor(request, AuditEntry.Source.ADMIN)
        done = submitting.act(request, AuditEntry.Action.CANCEL, selection=_selection(queryset), actor=actor).changed
        self.message_user(request, ngettext("%d computation cancelled.", "%d computations cancelled.", done) % done)

    @admin.action(description=_("Retry the selected computations"), permissions=["operate"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Computation]) -> None:
        try:
            actor = access.actor(request, AuditEntry.Source.ADMIN)
            done = submitting.act(request, AuditEntry.Action.RETRY, selection=_selection(queryset), actor=actor).changed
        except throttling.Refused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(
            request, ngettext("%d computation queued again.", "%d computations queued again.", done) % done, level
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail, read-only: entries are only ever added, by tasks.services."""

    list_display = ["created_at", "action", "source", "user", "address", "requested", "changed"]
    list_filter = ["action", "source", "created_at"]
    search_fields = ["=address", "user__username"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at",
        "action",
        "source",
        "user",
        "address",
        "selection",
        "requested",
        "changed",
        "pruned",
    ]
    exclude = ["computations"]

    @admin.display(description=_("pruned"))
    def pruned(self, entry: AuditEntry) -> str:
        """On the entry's page only: counting them costs a lookup per computation it names."""
        pruned = entry.pruned
        if not pruned:
            return gettext("None: all of its computations are kept.")
        return ngettext(
            "%(count)s of its computations was pruned (retention): the entry keeps its id.",
            "%(count)s of its computations were pruned (retention): the entry keeps their ids.",
            pruned,
        ) % {"count": pruned}


def queues_view(request: HttpRequest) -> HttpResponse:
    """The queues and workers in the admin: pause, resume and purge (asked twice), as on the Workers page, written
    to the audit trail as the admin's. The admin site serves it to its staff only (AdminSite.add_page); of them,
    operators see it, and only those who may operate change anything."""
    if not (access.may_operate if request.method == "POST" else access.may_oversee)(request.user):
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": gettext("Queues and workers")}
    if request.method == "POST":
        queue, action = request.POST.get("queue", ""), request.POST.get("action", "")
        if queue not in queues.NAMES or action not in control.QUEUE_ACTIONS:
            return HttpResponseBadRequest(gettext("Unknown queue or action."), content_type="text/plain; charset=utf-8")
        actor = access.actor(request, AuditEntry.Source.ADMIN)
        if action == "purge" and request.POST.get("confirm") != "yes":
            waiting = control.purgeable(queue)
            return render(request, "admin/dashboard/purge.html", {**context, "queue": queue, "waiting": waiting})
        messages.success(request, control.on_queue(queue, action, actor).text)
        return see_other(reverse("admin:queues"))
    try:
        figures, listed = queues.figures(), presence.listing()
    except RedisError:
        figures, listed = [], []
        messages.error(request, gettext("The task queue cannot be reached."))
    now = time.time()
    context |= {
        "queues": figures,
        "workers": [(worker, worker.state(now)) for worker in listed],
        "may_operate": access.may_operate(request.user),
    }
    return render(request, "admin/dashboard/queues.html", context)


class ScheduleAdminForm(forms.ModelForm):
    """A new schedule in the admin: the operation's inputs as JSON ({"x": "2", "y": "3"}), checked by the operation
    as the Schedules form checks them, and its time by the same rules."""

    operation = forms.ChoiceField(label=_("Operation"), choices=operation_choices)

    class Meta:
        model = Schedule
        fields = ["name", "operation", "inputs", "work_seconds", "kind", "run_at", "every", "unit", "cron", "catch_up"]

    def clean(self) -> dict:
        cleaned = super().clean()
        spec = REGISTRY.get(cleaned.get("operation") or "")
        if spec is not None and "inputs" not in self.errors:
            try:
                parsed = spec.parse_inputs(cleaned.get("inputs") or {})
                spec.validate(parsed)
                cleaned["parsed_inputs"] = parsed
            except OperationError as error:
                self.add_error("inputs", error_text(error, spec.inputs))
            except (KeyError, TypeError, ValueError, ArithmeticError):
                names = ", ".join(each.name for each in spec.inputs)
                self.add_error("inputs", gettext("Give each input as text: %(names)s.") % {"names": names})
        check_when(self, cleaned)
        return cleaned


class ScheduleRunInline(admin.TabularInline):
    model = ScheduleRun
    fields = readonly_fields = ["due_at", "fired_at", "manual", "outcome", "reason", "computation_id"]
    extra = max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Schedules: created here or on the Schedules page, then paused, resumed, run now or deleted, never edited (a
    change of time would need its own rules for the due time); every action through tasks.scheduling, audited."""

    form = ScheduleAdminForm
    list_display = ["name", "operation", "description", "next_run_at", "paused", "owner"]
    list_filter = ["kind", "paused"]
    search_fields = ["name"]
    actions = ["pause", "resume", "run_now"]

    def get_inlines(self, request: HttpRequest, obj: Schedule | None) -> list:
        return [] if obj is None else [ScheduleRunInline]  # its runs, once there can be some

    def get_readonly_fields(self, request: HttpRequest, obj: Schedule | None = None) -> list[str]:
        return [] if obj is None else [*ScheduleAdminForm.Meta.fields, "paused", "next_run_at", "owner", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Schedule | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return access.may_operate(request.user)

    def save_model(self, request: HttpRequest, obj: Schedule, form: ScheduleAdminForm, change: bool) -> None:
        data = form.cleaned_data
        created = scheduling.create(
            name=data["name"],
            operation=REGISTRY[data["operation"]],
            inputs=data["parsed_inputs"],
            work_seconds=data["work_seconds"],
            **scheduling.timing(data),
            owner=request.user,
            actor=access.actor(request, AuditEntry.Source.ADMIN),
        )
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        scheduling.delete(obj, access.actor(request, AuditEntry.Source.ADMIN))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            self.delete_model(request, schedule)

    def _each(self, request: HttpRequest, queryset: QuerySet[Schedule], act: Callable) -> int:
        actor = access.actor(request, AuditEntry.Source.ADMIN)
        return sum(bool(act(schedule, actor)) for schedule in queryset)

    @admin.action(description=_("Pause the selected schedules"), permissions=["operate"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        done = self._each(request, queryset, scheduling.pause)
        self.message_user(request, ngettext("%d schedule paused.", "%d schedules paused.", done) % done)

    @admin.action(description=_("Resume the selected schedules"), permissions=["operate"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        done = self._each(request, queryset, scheduling.resume)
        self.message_user(request, ngettext("%d schedule resumed.", "%d schedules resumed.", done) % done)

    @admin.action(description=_("Run the selected schedules now"), permissions=["operate"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        """Each run queues a computation: they spend the operator's submission budget, as anyone's do."""
        try:
            with throttling.budget(request, queryset.count()):
                done = self._each(request, queryset, scheduling.run_now)
        except throttling.Refused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return
        self.message_user(request, ngettext("%d schedule run.", "%d schedules run.", done) % done)


admin.site.add_page("queues/", queues_view, "queues")


# Webhooks (tasks.webhooks): read-only, the secret shown nowhere; an operator may remove a webhook, as its owner does.


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    """Workflows as rows: each links to its page (its graph) and to its steps among the computations, where they
    are cancelled and retried."""

    list_display = ["id", "name", "size", "owner", "created_at", "ended_at", "page"]
    list_select_related = ["owner"]
    list_filter = ["created_at", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "name"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    readonly_fields = [field.name for field in Workflow._meta.fields] + ["page", "steps"]

    @admin.display(description=_("page"))
    def page(self, workflow: Workflow) -> str:
        return format_html('<a href="{}">{}</a>', workflow.get_absolute_url(), _("its graph"))

    @admin.display(description=_("steps"))
    def steps(self, workflow: Workflow) -> str:
        url = reverse("admin:tasks_computation_changelist") + f"?workflow__id__exact={workflow.pk}"
        return format_html('<a href="{}">{}</a>', url, _("its steps"))


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ["id", "url", "owner", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["url", "owner__username"]
    fields = readonly_fields = ["url", "owner", "created_at", "deliveries"]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return access.may_operate(request.user)

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        registering.remove(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> None:
        for webhook in queryset:
            registering.remove(webhook)

    @admin.display(description=_("deliveries"))
    def deliveries(self, webhook: Webhook) -> str:
        url = reverse("admin:tasks_webhookdelivery_changelist") + f"?webhook__id__exact={webhook.pk}"
        return format_html('<a href="{}">{}</a>', url, _("its deliveries"))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["delivery_id", "event", "status", "attempts", "last_status_code", "webhook", "created_at"]
    list_select_related = ["webhook"]
    list_filter = ["status", "event", "created_at"]
    search_fields = ["=delivery_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Everyone's API tokens, for staff with the model's permissions: made for a person (the token shown once, in the
    message after saving), revoked by deleting; never edited, as its hash is all there is."""

    list_display = ["name", "user", "hint", "read_only", "created_at", "last_used_at", "expires_at"]
    list_select_related = ["user"]
    list_filter = ["read_only"]
    search_fields = ["name", "user__username", "hint"]
    fields = ["user", "name", "read_only", "expires_at"]
    raw_id_fields = ["user"]

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        token = obj.new_key()
        super().save_model(request, obj, form, change)
        message = gettext("The token for %(person)s, shown this once: %(token)s") % {
            "person": obj.user.get_username(),
            "token": token,
        }
        messages.warning(request, message)
