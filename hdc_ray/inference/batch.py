"""Prediction over batches of file paths, as a plain callable class: what a Ray Data actor pool runs.

``BatchPredictor(models)(batch)`` reads each image (``inputs.read_picture``), predicts, and returns columns
of plain values (mask bytes with their shape, spacing, conversion notes), so any executor can ship them
back to the one process that writes the output folder. No Ray here: ``hdc_ray.distributed.predict`` wraps
it in ``Dataset.map_batches``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdc_ray.inference.inputs import read_picture
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.train.card import ModelCard


def model_payload(models: list[LoadedModel]) -> list[dict[str, Any]]:
    """What an actor needs to rebuild the models: weights and cards as plain values (no file paths: the
    checkpoint files need not be visible on the workers)."""
    return [{"card": m.card.to_dict(), "weights": m.weights, "path": str(m.path), "note": m.note} for m in models]


def models_from_payload(payload: list[dict[str, Any]]) -> list[LoadedModel]:
    return [LoadedModel(Path(p["path"]), p["note"], ModelCard.from_dict(p["card"]), p["weights"], None) for p in payload]


class BatchPredictor:
    """Columns in: ``index`` (int), ``path`` (str). Columns out: ``index``, ``height``, ``width``, ``mask``
    (uint8 bytes, row-major), ``spacing_row`` / ``spacing_col`` (NaN when unknown), ``conversion`` ("" when
    none), ``image`` (uint8 grey bytes, for overlays; empty unless ``keep_images``) and ``seconds`` (this
    batch's read + predict time, shared by its images)."""

    def __init__(self, payload: list[dict[str, Any]], tta: bool = False, device: str = "cpu", keep_images: bool = False, threads: int = 1) -> None:
        torch.set_num_threads(threads)  # one actor per CPU it was given: no oversubscription
        self.predictor = Predictor(models_from_payload(payload), device, tta)
        self.predictor.warm_up()
        self.keep_images = keep_images

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tick = time.perf_counter()
        pictures = [read_picture(Path(str(p))) for p in batch["path"]]
        masks = self.predictor.predict([p.image for p in pictures])
        seconds = (time.perf_counter() - tick) / max(len(pictures), 1)
        spacing = [p.spacing or (float("nan"), float("nan")) for p in pictures]
        return {
            "index": np.asarray(batch["index"], np.int64),
            "height": np.array([m.shape[0] for m in masks], np.int64),
            "width": np.array([m.shape[1] for m in masks], np.int64),
            "mask": np.array([m.tobytes() for m in masks], dtype=object),
            "spacing_row": np.array([s[0] for s in spacing], np.float64),
            "spacing_col": np.array([s[1] for s in spacing], np.float64),
            "conversion": np.array([p.conversion or "" for p in pictures], dtype=object),
            "image": np.array([_grey_bytes(p.image) if self.keep_images else b"" for p in pictures], dtype=object),
            "seconds": np.full(len(pictures), seconds),
        }


def _grey_bytes(image: np.ndarray) -> bytes:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8).tobytes()


def unpack_row(row: dict[str, Any]) -> tuple[int, np.ndarray, tuple[float, float] | None, str | None, np.ndarray | None]:
    """(index, mask, spacing, conversion, grey image in [0, 1] or None) from one output row."""
    shape = (int(row["height"]), int(row["width"]))
    mask = np.frombuffer(row["mask"], np.uint8).reshape(shape)
    spacing = None if np.isnan(row["spacing_row"]) else (float(row["spacing_row"]), float(row["spacing_col"]))
    image = np.frombuffer(row["image"], np.uint8).reshape(shape) / 255.0 if row["image"] else None
    return int(row["index"]), mask, spacing, (str(row["conversion"]) or None), image
