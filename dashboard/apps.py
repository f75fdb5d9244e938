from django.apps import AppConfig
from django.contrib.admin import apps as admin
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = _("Dashboard")


class AdminConfig(admin.AdminConfig):
    """Django's admin, on a site whose login has the dashboard's sign-in limit."""

    default = False
    default_site = "dashboard.web.sign_in.AdminSite"
