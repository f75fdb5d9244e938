from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("computations/", views.computations, name="computations"),
    path("computations/new/", views.new_computation, name="computation-new"),
    path("computations/<int:pk>/", views.computation_detail, name="computation-detail"),
    path("computations/<int:pk>/cancel/", views.cancel_computation, name="computation-cancel"),
    path("computations/<int:pk>/retry/", views.retry_computation, name="computation-retry"),
    path("api/computations/<int:pk>", views.computation_json, name="api-computation"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler500 = "dashboard.views.server_error"
