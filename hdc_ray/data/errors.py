"""The one exception type of the data package."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset file, folder or split request is wrong; the message names the file (or folder) and the problem."""
