"""The one exception type of the data package."""

from __future__ import annotations

from hdc_ray.errors import UserError


class DataError(UserError, ValueError):
    """A dataset file, folder or split request is wrong; the message names the file (or folder) and the problem."""
