"""API tokens: how a program signs in as a person. A token is shown once, when it is made, and kept only as its
SHA-256 (a token is 256 random bits, so a fast hash is as safe as a slow one and costs nothing per request)."""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Recognisable in a leaked log or a secret scanner's rules, and never mistaken for a password.
PREFIX = "cdt_"
# last_used_at is written at most this often per token: not a write on every request.
LAST_USED_GRAIN = datetime.timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def issue(
        self,
        user: models.Model,
        name: str,
        *,
        read_only: bool = False,
        expires_at: datetime.datetime | None = None,
    ) -> tuple["ApiToken", str]:
        """A new token for `user`: the row, and the token itself, which nothing keeps."""
        row = self.model(user=user, name=name, read_only=read_only, expires_at=expires_at)
        token = row.new_key()
        row.save()
        return row, token

    def authenticate(self, token: str) -> "ApiToken | None":
        """The live token this is (not expired, its person active), with its person; None otherwise."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        now = timezone.now()
        row = (
            self.select_related("user")
            .filter(key_hash=digest(token), user__is_active=True)
            .exclude(expires_at__lte=now)
            .first()
        )
        if row is not None and (row.last_used_at is None or row.last_used_at < now - LAST_USED_GRAIN):
            self.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now
        return row


class ApiToken(models.Model):
    """A person's token for the API: a name they chose, optionally read-only, optionally expiring."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    key_hash = models.CharField(_("SHA-256 of the token"), max_length=64, unique=True, editable=False)
    # The token's first characters, to tell tokens apart in a list without keeping enough to use one.
    hint = models.CharField(_("begins with"), max_length=16, editable=False)
    read_only = models.BooleanField(_("read-only"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    def new_key(self) -> str:
        """Gives the row a new token's hash and first characters; the token, which only the caller will see."""
        token = PREFIX + secrets.token_urlsafe(32)
        self.key_hash, self.hint = digest(token), token[: len(PREFIX) + 4]
        return token

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
