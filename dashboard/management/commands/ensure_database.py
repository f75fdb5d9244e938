"""Creates the configured MySQL database (utf8mb4) when it does not exist yet; used by `make run`.

In Compose the MySQL image creates it, and the application's user need not have the right to.
"""

import MySQLdb
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the configured MySQL database (utf8mb4) if it is missing."
    # The system checks would connect to the very database that may not exist yet.
    requires_system_checks = []

    def handle(self, *args: object, **options: object) -> None:
        database = settings.DATABASES["default"]
        name = database["NAME"]
        try:
            connection = MySQLdb.connect(
                host=database["HOST"] or "127.0.0.1",
                port=int(database["PORT"] or 3306),
                user=database["USER"],
                password=database["PASSWORD"],
                connect_timeout=5,
            )
        except MySQLdb.OperationalError as error:
            raise CommandError(
                f"MySQL is not reachable ({error}). Start it, e.g. "
                "`start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`."
            ) from error
        try:
            with connection.cursor() as cursor:
                quoted = name.replace("`", "``")
                cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{quoted}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        finally:
            connection.close()
        self.stdout.write(f"Database {name} is ready.")
