"""Rows that belong to someone (computations, batches, schedules), and who sees them."""

from typing import Self

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, owner: AbstractBaseUser | None) -> Self:
        """The rows of `owner`; all of them for None (accounts off, or an operator who oversees everyone's)."""
        return self if owner is None else self.filter(owner=owner)


def owner_field(**options: object) -> models.ForeignKey:
    """Who made the row, when signed in; kept when they are deleted, as no one's."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        **options,
    )


class Owned(models.Model):
    """Who made the row, when signed in; with DASHBOARD_LOGIN_REQUIRED each person sees only their own."""

    owner = owner_field()

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True
