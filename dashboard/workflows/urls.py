"""The workflows' pages: the builder, a workflow's live graph, and what a person may do to one."""

from django.urls import path

from dashboard.workflows import building, pages

urlpatterns = [
    path("", building.create_workflow, name="workflows"),
    path("new/", building.new_workflow, name="workflow-new"),
    path("new/preview/", building.preview_workflow, name="workflow-preview"),
    path("<int:pk>/", pages.workflow_detail, name="workflow-detail"),
    path("<int:pk>/steps/", pages.workflow_steps, name="workflow-steps"),
    path("<int:pk>/cancel/", pages.cancel_workflow, name="workflow-cancel"),
    path("<int:pk>/retry/", pages.retry_workflow, name="workflow-retry"),
]
