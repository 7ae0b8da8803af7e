"""A folder of resume points on any filesystem pyarrow reaches (a local path, ``s3://``, ``gs://``).

Sweep trials resume from here, not from Tune's own checkpoints: Tune deletes a trial's old checkpoints
as new ones arrive (``CheckpointConfig(num_to_keep)``) while its saved experiment state, written every
few seconds, may still name one of them, and a driver killed in between leaves a sweep that cannot be
resumed (ray-project/ray #27790, #45176; Ray 2.60 raises "Could not recover from checkpoint as it does
not exist on storage anymore"). Here nobody else deletes, and the rules make a kill at any instant safe:

- a checkpoint is written whole or not at all: a local file under a temporary name, then renamed; an
  object store makes an object visible only once its upload completed;
- the ``keep`` newest stay, and older ones are deleted only after the new one is written, so once the
  first is written the folder always holds a complete checkpoint;
- :meth:`CheckpointFolder.load_latest` takes the newest that loads and names the ones it skipped.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from pyarrow import fs

from hdc_ray.train.checkpoint import CheckpointError, load

_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.pt$")


class CheckpointFolder:
    """``epoch_NNNN.pt`` files in ``uri`` (a local path or a URI); the newest ``keep`` are kept."""

    def __init__(self, uri: str, keep: int) -> None:
        self.uri, self.keep = uri.rstrip("/"), keep
        self._local = "://" not in uri
        self._fs: fs.FileSystem
        if self._local:
            self._fs, self._root = fs.LocalFileSystem(), str(Path(uri).expanduser())
        else:
            self._fs, self._root = fs.FileSystem.from_uri(self.uri)

    def save(self, state: dict[str, Any]) -> str:
        """Write ``state`` as ``epoch_NNNN.pt`` (``state["epoch"]``), then drop all but the newest ``keep``; returns where."""
        name = f"epoch_{int(state['epoch']):04d}.pt"
        buffer = io.BytesIO()
        torch.save(state, buffer)
        if self._local:
            folder = Path(self._root)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.tmp"
            with tmp.open("wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, folder / name)
        else:
            with self._fs.open_output_stream(f"{self._root}/{name}") as f:  # visible only when the upload completes
                f.write(buffer.getbuffer())
        for old in self.names()[: -self.keep]:
            self._fs.delete_file(f"{self._root}/{old}")
        return self._path(name)

    def names(self) -> list[str]:
        """The checkpoints present, oldest first."""
        try:
            infos = self._fs.get_file_info(fs.FileSelector(self._root, allow_not_found=True))
        except OSError:
            return []
        return sorted((i.base_name for i in infos if i.type == fs.FileType.File and _EPOCH_FILE.match(i.base_name)), key=_epoch_of)

    def load_latest(self) -> tuple[dict[str, Any] | None, str | None, list[str]]:
        """The newest checkpoint that loads: (state, its path, a note for each newer one that did not), or Nones."""
        skipped: list[str] = []
        for name in reversed(self.names()):
            try:
                return self._load(name), self._path(name), skipped
            except (CheckpointError, OSError) as exc:
                skipped.append(f"{self._path(name)} is unreadable ({exc}); resuming from an earlier checkpoint")
        return None, None, skipped

    def _load(self, name: str) -> dict[str, Any]:
        if self._local:
            return load(Path(self._root) / name)
        with self._fs.open_input_stream(f"{self._root}/{name}") as f:
            data = f.read()
        return load(io.BytesIO(data), label=self._path(name))

    def _path(self, name: str) -> str:
        return str(Path(self._root) / name) if self._local else f"{self.uri}/{name}"


def _epoch_of(name: str) -> int:
    match = _EPOCH_FILE.match(name)
    return int(match.group(1)) if match else -1
