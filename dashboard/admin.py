"""The admin site's pages for computations and the audit trail: read-only, acting only through the services."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from tasks import services
from tasks.models import AuditEntry, Computation

from . import throttling


def _selection(queryset: QuerySet[Computation]) -> services.Selection:
    return services.Selection(ids=list(queryset.values_list("pk", flat=True)[: services.BULK_CAP]))


@admin.register(Computation)
class ComputationAdmin(admin.ModelAdmin):
    list_display = [
        "id", "operation", "status", "progress", "owner", "created_at", "run_time", "attempts", "worker", "flower",
    ]  # fmt: skip
    list_select_related = ["owner"]
    list_filter = ["status", "operation", "created_at", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "=task_id"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_per_page = 50
    # The row changes only through its transitions (tasks.services), never by hand, and is not deleted here.
    readonly_fields = [field.name for field in Computation._meta.fields] + ["flower"]
    actions = ["cancel", "retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Computation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Computation | None = None) -> bool:
        return False

    @admin.display(description=_("run time"))
    def run_time(self, computation: Computation) -> str:
        if computation.run_time is None:
            return "—"
        return gettext("%(seconds)s s") % {"seconds": f"{computation.run_time.total_seconds():.3f}"}

    @admin.display(description=_("Flower"))
    def flower(self, computation: Computation) -> str:
        return format_html('<a href="/flower/task/{}">{}</a>', computation.task_id, _("task in Flower"))

    @admin.action(description=_("Cancel the selected computations"), permissions=["view"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Computation]) -> None:
        actor = services.Actor.from_request(request, AuditEntry.Source.ADMIN)
        done = throttling.act(request, AuditEntry.Action.CANCEL, selection=_selection(queryset), actor=actor).changed
        self.message_user(request, ngettext("%d computation cancelled.", "%d computations cancelled.", done) % done)

    @admin.action(description=_("Retry the selected computations"), permissions=["view"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Computation]) -> None:
        try:
            actor = services.Actor.from_request(request, AuditEntry.Source.ADMIN)
            done = throttling.act(request, AuditEntry.Action.RETRY, selection=_selection(queryset), actor=actor).changed
        except throttling.Refused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return
        level = messages.SUCCESS if done else messages.WARNING
        self.message_user(
            request, ngettext("%d computation queued again.", "%d computations queued again.", done) % done, level
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail, read-only: entries are only ever added, by tasks.services."""

    list_display = ["created_at", "action", "source", "user", "address", "requested", "changed"]
    list_filter = ["action", "source", "created_at"]
    search_fields = ["=address", "user__username"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "action", "source", "user", "address", "selection", "requested", "changed"]
    exclude = ["computations"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
