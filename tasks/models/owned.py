"""Rows that belong to someone (computations, batches, schedules), and who sees them."""

from typing import Self

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, owner: AbstractBaseUser | None) -> Self:
        """The rows of `owner`; all of them for None (accounts off, or an operator who oversees everyone's)."""
        return self if owner is None else self.filter(owner=owner)
