from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

# What each group may see in the admin, and do: "Read-only operators" look (the operator pages, everyone's work, the
# audit trail) and change nothing; "Operators" steer queues and workers too, and add and delete schedules in the admin.
SEEN = ["view_computation", "view_auditentry", "view_schedule", "view_schedulerun", "view_batch"]
GROUPS = {
    "Read-only operators": ["oversee", *SEEN],
    "Operators": ["operate", "oversee", "add_schedule", "delete_schedule", *SEEN],
}


def create_groups(apps, schema_editor):
    # Permissions are made after the last migration of a run; these groups need them now. (A historical app
    # config has no models module, and create_permissions skips an app without one.)
    config = apps.get_app_config("tasks")
    config.models_module, kept = True, getattr(config, "models_module", None)
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = kept
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(Permission.objects.filter(content_type__app_label="tasks", codename__in=codenames))
    # Staff could operate before this migration: they keep that (superusers have every permission anyway).
    operators = Group.objects.get(name="Operators")
    for user in User.objects.filter(is_staff=True, is_superuser=False):
        user.groups.add(operators)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("tasks", "0016_rollups_per_day"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="computation",
            options={
                "permissions": [
                    ("oversee", "Can see everyone's computations, the workers, the queues and the storage"),
                    ("operate", "Can steer queues and workers, and act on anyone's computations and schedules"),
                ],
                "verbose_name": "computation",
                "verbose_name_plural": "computations",
            },
        ),
        migrations.RunPython(create_groups, remove_groups),
    ]
