"""``hdc-ray predict``: masks for a folder of images, in one process (``hdc_ray.distributed.predict``: on Ray Data).

Everything that can refuse the run happens before the first mask is written (the checkpoint, the input
listing, the output folder). Masks are written into a hidden staging folder next to OUT and renamed into
place at the end, so an interrupted run leaves OUT as it was: never a folder of masks that looks finished
but is not. ``OUT/predictions.json`` records what produced the masks (checkpoints, card, options, speed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.inference.inputs import InputImage, InputSet, Picture, read_picture
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.inference.writers import write_mask, write_overlay
from hdc_ray.outputs import OutputError, check_writable, staged_folder

MANIFEST = "predictions.json"
OVERLAYS = "overlays"


@dataclass(frozen=True)
class PredictOptions:
    tta: bool = False
    overlays: bool = False
    batch_size: int = 8
    device: str = "cpu"
    progress: bool = True


@dataclass
class Timing:
    """Images and seconds after the warm-up, and the conversions reading did (kind -> example files)."""

    images: int = 0
    seconds: float = 0.0
    conversions: dict[str, list[str]] = field(default_factory=dict)
    measured: str = "read, resize, network, write"  # what the seconds cover
    wall_s: float | None = None  # end to end, start-up included, where that differs (Ray Data)

    def line(self, how: str = "") -> str:
        rate = self.images / self.seconds if self.seconds > 0 else float("inf")
        ms = 1000.0 * self.seconds / max(self.images, 1)
        wall = f"; {self.wall_s:.1f} s end to end, actor start-up included" if self.wall_s is not None else ""
        return f"{self.images} image(s) in {self.seconds:.2f} s{how}: {rate:.1f} images/s, {ms:.1f} ms per image ({self.measured}; warm-up excluded){wall}"

    def note(self, kind: str | None, key: str) -> None:
        if kind is not None:
            self.conversions.setdefault(kind, []).append(key)


def check_output(out: Path, inputs: InputSet, overwrite: bool) -> None:
    """Refuse an existing OUT without ``--overwrite``, an OUT that would replace the input, an unwritable OUT."""
    out_abs, root_abs = out.expanduser().resolve(), inputs.root.resolve()
    if out_abs == root_abs or out_abs in root_abs.parents:
        raise OutputError(f"--out {out}: is (or contains) the input folder {inputs.root}; choose another folder for the masks")
    if out_abs.exists() and (not out_abs.is_dir() or any(out_abs.iterdir())) and not overwrite:
        raise OutputError(f"--out {out}: already exists and is not empty; pass --overwrite to replace it, or choose another folder")
    if out_abs.exists() and not out_abs.is_dir():
        raise OutputError(f"--out {out}: is a file, not a folder")
    check_writable(out_abs, "--out")


def predict_folder(
    models: Sequence[LoadedModel], inputs: InputSet, out: Path, options: PredictOptions = PredictOptions(), *, overwrite: bool = False
) -> Timing:
    """Write a mask (and an overlay, if asked) for every image of ``inputs`` into ``out``; returns the timing."""
    check_output(out, inputs, overwrite)
    predictor = Predictor(models, options.device, options.tta)
    predictor.warm_up(min(options.batch_size, len(inputs.images)))
    timing = Timing()
    with staged_folder(out) as stage:
        bar = _bar(len(inputs.images), options.progress)
        start = time.perf_counter()
        for chunk in _chunks(inputs.images, options.batch_size):
            pictures = [_read(image) for image in chunk]
            masks = predictor.predict([p.image for p in pictures])
            for image, picture, mask in zip(chunk, pictures, masks, strict=True):
                save_outputs(stage, image, picture, mask, options.overlays)
                timing.note(picture.conversion, image.key)
            bar.update(len(chunk))
        timing.seconds, timing.images = time.perf_counter() - start, len(inputs.images)
        bar.close()
        write_manifest(stage, models, inputs, options, timing, "in-process")
    return timing


def _read(image: InputImage) -> Picture:
    return read_picture(image.path)


def save_outputs(stage: Path, image: InputImage, picture: Picture, mask: np.ndarray, overlays: bool) -> None:
    write_mask(stage / image.mask_rel, mask, picture.spacing)
    if overlays:
        write_overlay(stage / OVERLAYS / Path(image.key).with_suffix(".png"), picture.image, mask)  # mirrors INPUT


def write_manifest(stage: Path, models: Sequence[LoadedModel], inputs: InputSet, options: PredictOptions, timing: Timing, runner: str) -> None:
    manifest: dict[str, Any] = {
        "input": str(inputs.root), "layout": inputs.layout, "images": len(inputs.images),
        "checkpoints": [{"path": str(m.path), "how": m.note} for m in models], "card": models[0].card.to_dict(),
        "tta": options.tta, "ensemble": len(models), "runner": runner,
        "seconds": timing.seconds, "ms_per_image": 1000.0 * timing.seconds / max(timing.images, 1), "measured": timing.measured, "wall_s": timing.wall_s,
        "conversions": {k: {"count": len(v), "examples": v[:5]} for k, v in timing.conversions.items()},
    }  # fmt: skip
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2))


def conversion_lines(timing: Timing) -> list[str]:
    """One note per kind of conversion reading did, naming a few of the files."""
    lines = []
    for kind, keys in timing.conversions.items():
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        lines.append(f"note: {len(keys)} image(s) converted ({kind}): {shown}")
    return lines


def _chunks(items: Sequence[InputImage], size: int) -> Iterable[Sequence[InputImage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="predict", unit="img", disable=not enabled, dynamic_ncols=True, leave=False)

