"""Creates an API token for a person, for a script or a deployment: prints it once (it is kept only as a hash).

manage.py create_api_token ann "nightly report" [--read-only] [--expires-days 90]
"""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tasks.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a person and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="Whose token: it acts as this person.")
        parser.add_argument("name", help="What it is for, as the audit trail will name it.")
        parser.add_argument("--read-only", action="store_true", help="It may read, not change anything.")
        parser.add_argument("--expires-days", type=int, default=None, help="It stops working after this many days.")

    def handle(self, *args: object, **options: object) -> None:
        user = get_user_model().objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active person is called {options['username']!r}.")
        name = str(options["name"]).strip()
        if not name or len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("A token's name has 1 to 100 characters.")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days takes a number of days, 1 or more.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        row, token = ApiToken.objects.issue(user, name, read_only=bool(options["read_only"]), expires_at=expires_at)
        scope = "read-only" if row.read_only else "read and write"
        until = f", until {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else ""
        self.stderr.write(f"Token {name!r} for {user.get_username()} ({scope}{until}); shown this once:")
        self.stdout.write(token)
