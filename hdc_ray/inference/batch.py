"""Prediction over batches of file paths, as a plain callable class: what a Ray Data actor pool runs.

``BatchPredictor(models)(batch)`` reads each image (``inputs.read_picture``), predicts, and returns columns
of plain values (mask bytes with their shape, geometry, conversions, read errors), so any executor can ship them
back to the one process that writes the output folder. No Ray here: ``hdc_ray.distributed.predict`` wraps
it in ``Dataset.map_batches``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdc_ray.data.errors import DataError
from hdc_ray.data.mha import MhaGeometry
from hdc_ray.data.readers import Conversion
from hdc_ray.inference.inputs import Picture, read_picture
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
    (uint8 bytes, row-major), ``geometry`` (JSON of the MetaImage spacing/origin/direction; "" when none),
    ``conversions`` (JSON list of [what, lossy]), ``image`` (uint8 grey bytes, for overlays; empty unless
    ``keep_images``), ``probabilities`` (float32 ``(K, H, W)`` bytes; empty unless ``keep_probabilities``),
    ``error`` (why the image could not be read, "" when it could: the driver skips or stops) and ``seconds``
    (this batch's read + predict time, shared by its images)."""

    def __init__(self, payload: list[dict[str, Any]], tta: bool = False, device: str = "cpu", keep_images: bool = False, threads: int = 1,
                 keep_probabilities: bool = False) -> None:  # fmt: skip
        torch.set_num_threads(threads)  # one actor per CPU it was given: no oversubscription
        self.predictor = Predictor(models_from_payload(payload), device, tta)
        self.predictor.warm_up()
        self.keep_images = keep_images
        self.keep_probabilities = keep_probabilities

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tick = time.perf_counter()
        pictures: list[Picture | None] = []
        errors = []
        for path in batch["path"]:
            try:
                pictures.append(read_picture(Path(str(path))))
                errors.append("")
            except DataError as exc:  # a row that says so: the driver decides to skip or to stop
                pictures.append(None)
                errors.append(str(exc))
        read = [p for p in pictures if p is not None]
        results = self._predict([p.image for p in read]) if read else []
        by_row = iter(results)
        rows = [next(by_row) if p is not None else (np.zeros((0, 0), np.uint8), None) for p in pictures]
        seconds = (time.perf_counter() - tick) / max(len(pictures), 1)
        return {
            "index": np.asarray(batch["index"], np.int64),
            "height": np.array([m.shape[0] for m, _ in rows], np.int64),
            "width": np.array([m.shape[1] for m, _ in rows], np.int64),
            "mask": np.array([m.tobytes() for m, _ in rows], dtype=object),
            "geometry": np.array([_geometry_json(p) for p in pictures], dtype=object),
            "conversions": np.array([json.dumps([[c.what, c.lossy] for c in p.conversions]) if p else "[]" for p in pictures], dtype=object),
            "image": np.array([_grey_bytes(p.image) if self.keep_images and p else b"" for p in pictures], dtype=object),
            "probabilities": np.array([q.astype(np.float32).tobytes() if q is not None else b"" for _, q in rows], dtype=object),
            "error": np.array(errors, dtype=object),
            "seconds": np.full(len(pictures), seconds),
        }

    def _predict(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        if self.keep_probabilities:
            return [(m, q) for m, q in self.predictor.predict_with_probabilities(images)]
        return [(m, None) for m in self.predictor.predict(images)]


def _geometry_json(picture: Picture | None) -> str:
    if picture is None or picture.geometry is None:
        return ""
    g = picture.geometry
    return json.dumps({"spacing": g.spacing, "origin": g.origin, "direction": g.direction})


def _grey_bytes(image: np.ndarray) -> bytes:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8).tobytes()


@dataclass(frozen=True)
class BatchRow:
    """One output row, decoded: what the driver writes (``error`` set: nothing to write, the image did not read)."""

    index: int
    mask: np.ndarray
    picture: Picture  # the grey image (or the mask, when images were not kept), geometry, conversions
    probabilities: np.ndarray | None
    error: str


def unpack_row(row: dict[str, Any], num_classes: int) -> BatchRow:
    shape = (int(row["height"]), int(row["width"]))
    mask = np.frombuffer(row["mask"], np.uint8).reshape(shape)
    raw = json.loads(row["geometry"]) if row["geometry"] else None
    geometry = MhaGeometry(tuple(raw["spacing"]), tuple(raw["origin"]), tuple(raw["direction"])) if raw else None
    conversions = tuple(Conversion(str(what), bool(lossy)) for what, lossy in json.loads(row["conversions"]))
    image = np.frombuffer(row["image"], np.uint8).reshape(shape) / 255.0 if row["image"] else mask
    probabilities = np.frombuffer(row["probabilities"], np.float32).reshape((num_classes, *shape)) if row["probabilities"] else None
    return BatchRow(int(row["index"]), mask, Picture(image, geometry, conversions), probabilities, str(row["error"]))
