"""The audit trail is append-only in the database too, not only through the ORM: no row of it can be deleted, and
an UPDATE may only clear the user (when that user is deleted, as its foreign key says).

Maintenance that turns foreign key checks off for its session (Django's flush between tests, a restore) may still
delete; the application never does.
"""

from django.db import migrations

REFUSE = "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'The audit trail is append-only.'"
UNCHANGED = " AND ".join(
    f"NEW.{column} <=> OLD.{column}"
    for column in ("id", "created_at", "action", "source", "address", "selection", "requested", "changed")
)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0007_owners")]

    operations = [
        migrations.RunSQL(
            sql=[
                "CREATE TRIGGER tasks_auditentry_no_delete BEFORE DELETE ON tasks_auditentry FOR EACH ROW "
                f"BEGIN IF @@SESSION.foreign_key_checks THEN {REFUSE}; END IF; END",
                "CREATE TRIGGER tasks_auditentry_no_update BEFORE UPDATE ON tasks_auditentry FOR EACH ROW "
                f"BEGIN IF NOT ({UNCHANGED} AND (NEW.user_id <=> OLD.user_id OR NEW.user_id IS NULL)) THEN {REFUSE}; "
                "END IF; END",
            ],
            reverse_sql=[
                "DROP TRIGGER tasks_auditentry_no_delete",
                "DROP TRIGGER tasks_auditentry_no_update",
            ],
        )
    ]
