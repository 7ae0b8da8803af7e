"""Checks and atomic writes for output folders: refuse an unwritable place before any work starts.

No torch, no ray: the CLI calls these before it builds data or starts a cluster.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hdc_ray.errors import UserError


class OutputError(UserError, ValueError):
    """An output folder cannot be created or written; the message names it."""


def check_writable(path: str | Path, what: str) -> None:
    """Raise :class:`OutputError` unless ``path`` (a folder, maybe not there yet) can be created and written.

    Probes by creating and removing a file in the nearest existing folder, because ``os.access`` says yes
    to root on a read-only file system. Creates nothing that stays. URIs (``s3://``) are not checked.
    """
    if "://" in str(path):
        return
    target = Path(path).expanduser().absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {path}: cannot create it, {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".hdc-ray-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot write into {existing}: {exc.strerror or exc}") from None


@contextmanager
def staged_folder(final: Path, on_failure: Callable[[Path, BaseException], None] | None = None) -> Iterator[Path]:
    """Write a whole folder next to ``final`` and rename it into place on success.

    An interrupted writer leaves ``final`` as it was (the previous output, or nothing) and removes its
    temporary folder; a reader never sees a half-written mix of old and new files. ``on_failure(staging,
    exc)`` runs first and may move the staging folder elsewhere to keep what it holds (``predict`` does).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp's 0o700 would make the published folder private
    try:
        yield staging
    except BaseException as exc:
        if on_failure is not None:
            on_failure(staging, exc)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
