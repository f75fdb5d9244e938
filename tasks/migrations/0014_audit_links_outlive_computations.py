"""The audit trail's links to computations outlive them: retention (tasks.retention) deletes computations, and an
entry keeps the ids of those it acted on, so it can say that some were pruned.

The table Django made for the many-to-many field becomes a model of its own (the same table, nothing copied), its
foreign key to the computation is dropped, and its rows become append-only in the database, as the entries are.
"""

import django.db.models.deletion
from django.db import migrations, models

REFUSE = "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'The audit trail is append-only.'"


class Migration(migrations.Migration):
    dependencies = [("tasks", "0013_rollups")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditedComputation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "computation",
                            models.ForeignKey(
                                db_column="computation_id",
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="tasks.computation",
                            ),
                        ),
                        (
                            "entry",
                            models.ForeignKey(
                                db_column="auditentry_id",
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="links",
                                to="tasks.auditentry",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "tasks_auditentry_computations",
                        "unique_together": {("entry", "computation")},
                        "verbose_name": "audit trail link",
                        "verbose_name_plural": "audit trail links",
                    },
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="computations",
                    field=models.ManyToManyField(
                        related_name="audit_entries",
                        through="tasks.AuditedComputation",
                        to="tasks.computation",
                        verbose_name="computations",
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="auditedcomputation",
            name="computation",
            field=models.ForeignKey(
                db_column="computation_id",
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="tasks.computation",
            ),
        ),
        migrations.RunSQL(
            sql=[
                "CREATE TRIGGER tasks_auditentry_computations_no_delete BEFORE DELETE ON tasks_auditentry_computations "
                f"FOR EACH ROW BEGIN IF @@SESSION.foreign_key_checks THEN {REFUSE}; END IF; END",
                "CREATE TRIGGER tasks_auditentry_computations_no_update BEFORE UPDATE ON tasks_auditentry_computations "
                f"FOR EACH ROW BEGIN {REFUSE}; END",
            ],
            reverse_sql=[
                "DROP TRIGGER tasks_auditentry_computations_no_delete",
                "DROP TRIGGER tasks_auditentry_computations_no_update",
            ],
        ),
    ]
