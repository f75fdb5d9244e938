from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from dashboard.api import legacy as api
from dashboard.api import token_pages
from dashboard.api.v1 import api as api_v1
from dashboard.computations import batches, detail, exports, listing, notifications
from dashboard.operators import metrics, storage, workers
from dashboard.schedules import pages
from dashboard.web import health, sign_in, theme
from dashboard.webhooks import webhook_pages

urlpatterns = [
    path("", listing.dashboard, name="dashboard"),
    path("computations/", listing.computations, name="computations"),
    path("computations/new/", listing.new_computation, name="computation-new"),
    path("computations/bulk/", listing.bulk_action, name="computations-bulk"),
    path("computations/export.csv", exports.export_csv, name="export-csv"),
    path("computations/export.json", exports.export_json, name="export-json"),
    path("computations/<int:pk>/", detail.computation_detail, name="computation-detail"),
    path("computations/<int:pk>/cancel/", detail.cancel_computation, name="computation-cancel"),
    path("computations/<int:pk>/retry/", detail.retry_computation, name="computation-retry"),
    path("notifications/", notifications.toasts, name="notifications"),
    path("batches/", batches.create_batch, name="batches"),
    path("batches/new/", batches.new_batch, name="batch-new"),
    path("batches/<int:pk>/", batches.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/rows/", batches.batch_rows, name="batch-rows"),
    path("batches/<int:pk>/cancel/", batches.cancel_batch, name="batch-cancel"),
    path("batches/<int:pk>/retry/", batches.retry_batch, name="batch-retry"),
    path("workflows/", include("dashboard.workflows.urls")),
    path("api/v1/", api_v1.urls),
    # The API before /api/v1/, kept for one release (README, "API").
    path("api/computations/<int:pk>", api.computation_json, name="api-computation"),
    path("api/computations/<int:pk>/cancel", api.cancel_json, name="api-computation-cancel"),
    path("api/computations/<int:pk>/retry", api.retry_json, name="api-computation-retry"),
    path("workers/", workers.workers_page, name="workers"),
    path("storage/", storage.storage_page, name="storage"),
    path("schedules/", pages.schedules_page, name="schedules"),
    path("schedules/<int:pk>/", pages.schedule_detail, name="schedule-detail"),
    path("schedules/<int:pk>/<str:action>/", pages.schedule_action, name="schedule-action"),
    path("api/schedules", api.schedules_json, name="api-schedules"),
    path("api/schedules/<int:pk>", api.schedule_json, name="api-schedule"),
    path("api/schedules/<int:pk>/<str:action>", api.schedule_action_json, name="api-schedule-action"),
    path("workers/queues/<str:name>/purge/", workers.purge_queue, name="queue-purge"),
    path("workers/queues/<str:name>/<str:action>/", workers.queue_action, name="queue-action"),
    path("workers/<str:name>/<str:action>/", workers.worker_action, name="worker-action"),
    path("api/workers", api.workers_json, name="api-workers"),
    path("api/queues/<str:name>/<str:action>", api.queue_json, name="api-queue"),
    path("api/workers/<str:name>/<str:action>", api.worker_json, name="api-worker"),
    path("webhooks/", webhook_pages.webhooks_page, name="webhooks"),
    path("webhooks/<int:pk>/", webhook_pages.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/remove/", webhook_pages.remove_webhook, name="webhook-remove"),
    path("metrics", metrics.metrics, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The language switcher works before signing in, on the login page too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("theme/", theme.set_theme, name="set-theme"),
    path("accounts/tokens/", token_pages.tokens_page, name="api-tokens"),
    path("accounts/tokens/<int:pk>/revoke/", token_pages.revoke_token, name="api-token-revoke"),
    path("accounts/login/", sign_in.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Our templates, by name: the admin's registration/ templates would be found first.
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="dashboard/account/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="dashboard/account/password_change_done.html"),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
]

handler500 = "dashboard.web.errors.server_error"
