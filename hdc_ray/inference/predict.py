"""``hdc-ray predict``: masks for a folder of images, in one process (``hdc_ray.distributed.predict``: on Ray Data).

Everything that can refuse the run happens before the first mask is written (the checkpoint, the input
listing, the output folder). Masks are written into a hidden staging folder next to OUT and renamed into
place at the end, so OUT is never a folder of masks that looks finished but is not. A run that stops early
(an unreadable image, Ctrl-C, a full disk) leaves OUT as it was and keeps the masks it did write in
``OUT.partial/`` with ``partial.json`` saying why it stopped; its message says so. ``continue_on_error`` skips
unreadable images instead, lists them in ``OUT/errors.json`` and publishes the rest.
``OUT/predictions.json`` records what produced the masks (checkpoints, card, options, conversions, speed).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdc_ray.data.errors import DataError
from hdc_ray.data.readers import Conversion
from hdc_ray.inference.inputs import InputError, InputImage, InputSet, Picture, read_picture
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.inference.writers import write_mask, write_overlay, write_probabilities
from hdc_ray.outputs import OutputError, check_writable, staged_folder

MANIFEST = "predictions.json"
ERRORS = "errors.json"  # the images --continue-on-error skipped
PARTIAL_RECORD = "partial.json"  # in OUT.partial/: why the run stopped, what it wrote
OVERLAYS = "overlays"
PROBABILITIES_SUFFIX = ".npz"


@dataclass(frozen=True)
class PredictOptions:
    tta: bool = False
    overlays: bool = False
    batch_size: int = 8
    device: str = "cpu"
    progress: bool = True
    save_probabilities: bool = False  # OUT/<mask name>.npz beside each mask
    continue_on_error: bool = False  # skip unreadable images (listed in errors.json) instead of stopping


@dataclass
class RunRecord:
    """What a run did, filled in as it goes: masks written, images skipped, conversions, and its timing."""

    images: int = 0  # masks written after the warm-up (what the seconds cover)
    seconds: float = 0.0
    conversions: dict[Conversion, list[str]] = field(default_factory=dict)  # what reading did -> image keys
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image key, why) of unreadable images
    measured: str = "read, resize, network, write"  # what the seconds cover
    wall_s: float | None = None  # end to end, start-up included, where that differs (Ray Data)
    stop_note: str = ""  # set when the run stops early: what became of the masks written

    def line(self, how: str = "") -> str:
        rate = self.images / self.seconds if self.seconds > 0 else float("inf")
        ms = 1000.0 * self.seconds / max(self.images, 1)
        wall = f"; {self.wall_s:.1f} s end to end, actor start-up included" if self.wall_s is not None else ""
        return f"{self.images} image(s) in {self.seconds:.2f} s{how}: {rate:.1f} images/s, {ms:.1f} ms per image ({self.measured}; warm-up excluded){wall}"

    def note(self, conversions: Iterable[Conversion], key: str) -> None:
        for conversion in conversions:
            self.conversions.setdefault(conversion, []).append(key)

    def skip(self, key: str, why: str) -> None:
        self.skipped.append((key, why))


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
) -> RunRecord:
    """Write a mask (and probabilities, an overlay, if asked) for every image of ``inputs`` into ``out``."""
    check_output(out, inputs, overwrite)
    predictor = Predictor(models, options.device, options.tta)
    predictor.warm_up(min(options.batch_size, len(inputs.images)))
    record = RunRecord()
    with output_folder(out, inputs, record) as stage:
        bar = _bar(len(inputs.images), options.progress)
        start = time.perf_counter()
        for chunk in _chunks(inputs.images, options.batch_size):
            readable, failure = _read_chunk(chunk, record, options.continue_on_error)
            _predict_chunk(stage, predictor, readable, options, record)
            bar.update(len(chunk))
            if failure is not None:
                raise failure  # after the masks of the images before it are written: they are kept
        record.seconds = time.perf_counter() - start
        bar.close()
        write_manifest(stage, models, inputs, options, record, "in-process")
    return record


def _read_chunk(chunk: Sequence[InputImage], record: RunRecord, skip_bad: bool) -> tuple[list[tuple[InputImage, Picture]], DataError | None]:
    """The images of ``chunk`` that read, up to the first that does not (or all readable ones, skipping the rest)."""
    readable = []
    for image in chunk:
        try:
            readable.append((image, read_picture(image.path)))
        except DataError as exc:
            if not skip_bad:
                return readable, exc
            record.skip(image.key, str(exc))
    return readable, None


def _predict_chunk(stage: Path, predictor: Predictor, readable: list[tuple[InputImage, Picture]], options: PredictOptions, record: RunRecord) -> None:
    if not readable:
        return
    images = [picture.image for _, picture in readable]
    results: list[tuple[np.ndarray, np.ndarray | None]]
    if options.save_probabilities:
        results = list(predictor.predict_with_probabilities(images))
    else:
        results = [(mask, None) for mask in predictor.predict(images)]
    for (image, picture), (mask, probabilities) in zip(readable, results, strict=True):
        save_outputs(stage, image, picture, mask, options.overlays, probabilities)
        record.note(picture.conversions, image.key)
        record.images += 1


def save_outputs(stage: Path, image: InputImage, picture: Picture, mask: np.ndarray, overlays: bool, probabilities: np.ndarray | None = None) -> None:
    write_mask(stage / image.mask_rel, mask, picture.geometry)
    if probabilities is not None:
        write_probabilities(stage / image.mask_rel.with_suffix(PROBABILITIES_SUFFIX), probabilities)
    if overlays:
        write_overlay(stage / OVERLAYS / Path(image.key).with_suffix(".png"), picture.image, mask)  # mirrors INPUT


# ----------------------------------------------------------------------------------- stopping early


@contextmanager
def output_folder(out: Path, inputs: InputSet, record: RunRecord) -> Iterator[Path]:
    """A staged OUT that is published whole on success; on any failure the masks written so far move to
    ``OUT.partial/`` and the error says so (an unreadable image: in its one-line message; anything else: a note)."""
    try:
        with staged_folder(out, on_failure=lambda stage, exc: _keep_partial(stage, exc, out, inputs, record)) as stage:
            yield stage
    except DataError as exc:  # an unreadable image: the user's to fix, one line
        raise InputError(f"{exc}; stopped after {record.images} of {len(inputs.images)} image(s): {record.stop_note}; "
                         "fix or remove the file and rerun, or pass --continue-on-error to skip unreadable images") from None  # fmt: skip
    except BaseException as exc:
        if record.stop_note:
            exc.add_note(record.stop_note)
        raise


def _keep_partial(stage: Path, exc: BaseException, out: Path, inputs: InputSet, record: RunRecord) -> None:
    """Move the staging folder to ``OUT.partial/`` with ``partial.json`` (nothing to keep: it is removed)."""
    untouched = f"{out} is left as it was" if out.exists() else f"{out} was not created"
    if record.images == 0:
        record.stop_note = f"no mask was written ({untouched})"
        return
    target = partial_folder(out)
    why = " ".join(f"{type(exc).__name__}: {exc}".split())
    partial = {"complete": False, "stopped_by": why, "input": str(inputs.root), "images": len(inputs.images), "masks_written": record.images,
               "output": str(out), "skipped": _skipped_list(record), "conversions": _conversion_list(record)}  # fmt: skip
    try:
        (stage / PARTIAL_RECORD).write_text(json.dumps(partial, indent=2))
        if target.exists():
            shutil.rmtree(target)  # an earlier partial output of ours (partial_folder checked)
        os.replace(stage, target)
    except OSError as err:
        record.stop_note = f"the {record.images} mask(s) written could not be kept ({err}); {untouched}"
        return
    record.stop_note = f"the {record.images} mask(s) written are kept in {target}/ (see {PARTIAL_RECORD}; {untouched})"


def partial_folder(out: Path) -> Path:
    """``OUT.partial`` beside OUT: an earlier partial output (it holds ``partial.json``) is replaced; a folder of
    that name that is not one is left alone and a numbered name is taken."""
    candidate, n = out.with_name(f"{out.name}.partial"), 1
    while candidate.exists() and not (candidate / PARTIAL_RECORD).is_file():
        n += 1
        candidate = out.with_name(f"{out.name}.partial-{n}")
    return candidate


# ------------------------------------------------------------------------------------------ records


def write_manifest(stage: Path, models: Sequence[LoadedModel], inputs: InputSet, options: PredictOptions, record: RunRecord, runner: str) -> None:
    manifest: dict[str, Any] = {
        "input": str(inputs.root), "layout": inputs.layout, "images": len(inputs.images), "masks_written": record.images,
        "skipped": len(record.skipped), "nnunet_names": inputs.nnunet_names,
        "checkpoints": [{"path": str(m.path), "how": m.note} for m in models], "card": models[0].card.to_dict(),
        "tta": options.tta, "ensemble": len(models), "runner": runner,
        "probabilities": {"file": f"<mask name>{PROBABILITIES_SUFFIX}", "array": "probabilities", "dtype": "float32",
                          "layout": "(classes, height, width), native size"} if options.save_probabilities else None,
        "seconds": record.seconds, "ms_per_image": 1000.0 * record.seconds / max(record.images, 1), "measured": record.measured, "wall_s": record.wall_s,
        "conversions": _conversion_list(record),
    }  # fmt: skip
    (stage / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if record.skipped:
        errors = {"images": len(inputs.images), "masks_written": record.images, "skipped": _skipped_list(record)}
        (stage / ERRORS).write_text(json.dumps(errors, indent=2))


def _conversion_list(record: RunRecord) -> list[dict[str, Any]]:
    return [{"what": c.what, "level": _level(c), "count": len(keys), "images": keys} for c, keys in record.conversions.items()]


def _skipped_list(record: RunRecord) -> list[dict[str, str]]:
    return [{"image": key, "error": why} for key, why in record.skipped]


def _level(conversion: Conversion) -> str:
    return "warning" if conversion.lossy else "note"


def summary_lines(record: RunRecord, out: Path, how: str, options: PredictOptions) -> tuple[list[str], list[str]]:
    """What a finished run prints: (lines for stdout, lines for stderr: the warnings and the skipped images)."""
    extras = [f"overlays in {out / OVERLAYS}/"] if options.overlays else []
    extras += [f"probabilities in <mask name>{PROBABILITIES_SUFFIX}"] if options.save_probabilities else []
    said = [*conversion_lines(record, lossy=False), f"masks in {out}/ ({', '.join([*extras, MANIFEST])})", f"predicted {record.line(how)}"]
    return said, [*conversion_lines(record, lossy=True), *skipped_lines(record, out)]


def conversion_lines(record: RunRecord, lossy: bool) -> list[str]:
    """One line per kind of conversion (``lossy``: the warnings, else the notes), naming a few of the files."""
    lines = []
    for conversion, keys in record.conversions.items():
        if conversion.lossy == lossy:
            lines.append(f"{_level(conversion)}: {len(keys)} image(s) converted ({conversion.what}): {_some(keys)}")
    return lines


def skipped_lines(record: RunRecord, out: Path) -> list[str]:
    """The closing lines of a run that skipped images: how many, where they are listed, the first few."""
    if not record.skipped:
        return []
    lines = [f"error: skipped {len(record.skipped)} unreadable image(s) of {record.images + len(record.skipped)} (listed in {out / ERRORS}):"]
    lines += [f"  {why}" for _, why in record.skipped[:10]]
    if len(record.skipped) > 10:
        lines.append(f"  ... and {len(record.skipped) - 10} more")
    return lines


def _some(keys: Sequence[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more (all in {MANIFEST})" if len(keys) > 3 else "")


def _chunks(items: Sequence[InputImage], size: int) -> Iterable[Sequence[InputImage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="predict", unit="img", disable=not enabled, dynamic_ncols=True, leave=False)
