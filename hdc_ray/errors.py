"""The one base class of the errors that are the user's to fix.

``hdc-ray`` prints a :class:`UserError` as one ``error:`` line (no traceback) and exits with 2; anything
else is a bug and gets a crash log. Every user-facing error type derives from it, next to the built-in
type its callers already catch (``ValueError`` for bad input, ``RuntimeError`` for a cluster that cannot
run the job), so existing ``except ValueError`` code keeps working. No imports: every layer may use it.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a broken file or a cluster that cannot run the job; the message says what to change."""
