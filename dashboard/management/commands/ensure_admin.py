"""Creates or updates the admin user from ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD (the migrate step).

Nothing happens while ADMIN_PASSWORD is empty. In production mode (DEBUG off) the password must pass Django's
password validators, so no default or weak password ever guards the admin site.
"""

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create or update the admin user from ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD."

    def handle(self, *args: object, **options: object) -> None:
        username, email, password = settings.ADMIN_USERNAME, settings.ADMIN_EMAIL, settings.ADMIN_PASSWORD
        if not password:
            self.stdout.write("ADMIN_PASSWORD is empty: no admin user created or changed.")
            return
        if not username:
            raise CommandError("ADMIN_USERNAME must not be empty along with ADMIN_PASSWORD.")
        User = get_user_model()
        if not settings.DEBUG:
            try:
                password_validation.validate_password(password, User(username=username, email=email))
            except ValidationError as error:
                messages = " ".join(error.messages)
                raise CommandError(f"ADMIN_PASSWORD is too weak for production mode: {messages}") from error
        user = User.objects.filter(username=username).first() or User(username=username)
        created = user.pk is None
        user.email, user.is_staff, user.is_superuser, user.is_active = email, True, True, True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Admin user {username} {'created' if created else 'updated'}.")
