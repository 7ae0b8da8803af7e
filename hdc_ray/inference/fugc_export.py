"""``hdc-ray export-fugc``: a FUGC 2025 code submission (``model.py`` + its weights) from a checkpoint.

    export_fugc(load_models(resolve("runs/fugc"), "cervix"), Path("submission"))

writes ``submission/model.py`` (the template ``inference/fugc_model.py`` with the network's source from
``model/unet.py`` copied in, so it needs numpy and torch only: FUGC's Docker image has no hdc-ray) and
``submission/hdc_ray_fugc.pt`` (the weights of every ensemble member, the model card, the TTA flag; plain
values and tensors, ``torch.load(weights_only=True)`` reads it). Before the folder is published, the new
``model.py`` is imported in a fresh interpreter where hdc-ray and Pillow cannot be imported, and its mask for
a synthetic FUGC-sized image must equal ``hdc-ray predict``'s pixel for pixel; its speed there is reported.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdc_ray.inference import fugc_model
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.model import unet
from hdc_ray.outputs import OutputError, check_writable, staged_folder

SUBMISSION = "model.py"
FUGC_SHAPE = (3, 336, 544)  # FUGC's X: channels, height, width
NETWORK_START, NETWORK_END = "# >>> network", "# <<< network"
NETWORK_PARTS = (unet._norm, unet.ConvBlock, unet.Encoder, unet.Decoder, unet.stage_widths)  # what SegNet needs
# The fresh interpreter of the check: hdc-ray, Pillow and friends made unimportable, so a stray import fails.
CHECK_SCRIPT = """
import json, sys, time
for name in ("hdc_ray", "PIL", "scipy", "cv2", "skimage"):
    sys.modules[name] = None
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from model import model
net = model()
net.device = torch.device("cpu")  # the reference ran on the CPU
net.load(sys.argv[1])
x = np.load(sys.argv[2])
mask = net.predict(x)
np.save(sys.argv[3], mask)
times = []
for _ in range(7):
    tick = time.perf_counter()
    net.predict(x)
    times.append(time.perf_counter() - tick)
print(json.dumps({"ms": sorted(times)[3] * 1000.0, "dtype": str(mask.dtype), "shape": list(mask.shape)}))
"""


@dataclass(frozen=True)
class ExportReport:
    model_file: Path
    weights_file: Path
    pixels_equal: int  # of the check image, where model.py's mask equals hdc-ray predict's
    pixels: int
    foreground: int  # foreground pixels of that mask: how much the check had to agree on
    ms_per_image: float  # model.py's predict on one (3, 336, 544) image, CPU, after a warm-up: the median of 7

    def lines(self) -> list[str]:
        mb = self.weights_file.stat().st_size / 1e6
        return [
            f"wrote {self.model_file} (numpy and torch only: the network's source copied in) and {self.weights_file} ({mb:.1f} MB)",
            f"checked: {SUBMISSION} imported alone in a fresh interpreter reproduces hdc-ray predict on a {FUGC_SHAPE} test image "
            f"({self.pixels_equal} of {self.pixels} pixels, {self.foreground} of them foreground); {self.ms_per_image:.1f} ms per image on this CPU",
            f"submit: the files of {self.model_file.parent}/ at the top level of the zip FUGC's Codabench page takes",
        ]


def export_fugc(models: Sequence[LoadedModel], out: Path, *, tta: bool = False, overwrite: bool = False) -> ExportReport:
    """Write and check ``out/model.py`` and ``out/hdc_ray_fugc.pt``; ``models`` must segment the cervix."""
    card = models[0].card
    if card.task != "cervix" or card.in_channels != 1:
        raise OutputError(f"{models[0].path}: segments {card.task}; a FUGC submission needs a cervix model (anterior_lip, posterior_lip)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputError(f"--out {out}: already exists and is not empty; pass --overwrite to replace it, or choose another folder")
    check_writable(out, "--out")
    with staged_folder(out) as stage:
        (stage / SUBMISSION).write_text(model_source(models, tta))
        torch.save(weights_payload(models, tta), stage / fugc_model.WEIGHTS)
        equal, pixels, foreground, ms = check_submission(stage, models, tta)  # raises inside: nothing is published
    return ExportReport(out / SUBMISSION, out / fugc_model.WEIGHTS, equal, pixels, foreground, ms)


def model_source(models: Sequence[LoadedModel], tta: bool) -> str:
    """The template with the network's source in place of its import, under a header naming the checkpoints."""
    from hdc_ray import __version__

    template = Path(inspect.getfile(fugc_model)).read_text()
    start = template.index(NETWORK_START)
    end = template.index("\n", template.index(NETWORK_END)) + 1
    network = "\n\n".join(inspect.getsource(part).rstrip() for part in NETWORK_PARTS)
    # zip(strict=) is Python >= 3.10; the lengths agree by construction, and FUGC's image may be older.
    network = network.replace(", strict=True)", ")")
    block = f"# --- the network, copied from hdc_ray/model/unet.py (hdc-ray {__version__}) ---\n\n\n{network}\n\n\n# --- end of the network ---\n"
    card = models[0].card
    header = [
        f"# Written by hdc-ray {__version__} export-fugc: a FUGC 2025 code submission (numpy and torch only).",
        *(f"# weights: {m.note}" for m in models),
        f"# model: {card.describe()}" + (f"; an ensemble of {len(models)}" if len(models) > 1 else "") + ("; flip TTA" if tta else ""),
    ]
    return "\n".join(header) + "\n" + template[:start] + block + template[end:]


def weights_payload(models: Sequence[LoadedModel], tta: bool) -> dict[str, object]:
    """Plain values and tensors only: what ``model.load`` reads with ``torch.load(weights_only=True)``."""
    return {
        "format": fugc_model.FORMAT, "version": 1, "card": models[0].card.to_dict(), "tta": tta,
        "members": [{k: v.detach().cpu() for k, v in m.weights.items()} for m in models], "sources": [m.note for m in models],
    }  # fmt: skip


def check_submission(folder: Path, models: Sequence[LoadedModel], tta: bool) -> tuple[int, int, int, float]:
    """(pixels equal, pixels, foreground pixels, ms per image) of ``folder/model.py`` run alone against
    ``hdc-ray predict``'s steps on :func:`check_image`; raises if it fails to run or disagrees anywhere."""
    from hdc_ray.data.readers import grey_converted, unit_float_converted
    from hdc_ray.inference.predictor import Predictor

    x = check_image()
    grey, _ = grey_converted(np.moveaxis(x, 0, -1), Path("check.png"))  # as a PNG of this image is read
    expected = Predictor(models, "cpu", tta).predict([unit_float_converted(grey, Path("check.png"))[0]])[0]
    with tempfile.TemporaryDirectory(prefix="hdc-ray-fugc-check-") as tmp:
        np.save(Path(tmp) / "x.npy", x)
        done = subprocess.run([sys.executable, "-c", CHECK_SCRIPT, str(folder.resolve()), str(Path(tmp) / "x.npy"), str(Path(tmp) / "mask.npy")],
                              capture_output=True, text=True, timeout=600, cwd=tmp)  # fmt: skip
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]  # the exception itself
            raise RuntimeError(f"the generated {SUBMISSION} fails when run alone (a bug in hdc-ray export-fugc; nothing was written): {last}")
        got, timing = np.load(Path(tmp) / "mask.npy"), json.loads(done.stdout.strip().splitlines()[-1])
    if got.shape != expected.shape or got.dtype != np.uint8:
        raise RuntimeError(f"the generated {SUBMISSION} returned {got.dtype} {got.shape}, expected uint8 {expected.shape} (a bug in hdc-ray export-fugc)")
    equal = int((got == expected).sum())
    if equal != got.size:
        raise RuntimeError(f"the generated {SUBMISSION} disagrees with hdc-ray predict on {got.size - equal} of {got.size} pixels of a test image "
                           "(a bug in hdc-ray export-fugc; nothing was written)")  # fmt: skip
    return equal, int(got.size), int((expected > 0).sum()), float(timing["ms"])


def check_image() -> np.ndarray:
    """A synthetic cervix scan at FUGC's size, as FUGC hands it to ``predict``: uint8 (3, 336, 544), grey content."""
    from PIL import Image

    from hdc_ray.data.synthetic import SyntheticSpec, generate_sample, sample_rng

    image, _ = generate_sample(SyntheticSpec("cervix", "easy", 128), sample_rng(2025, 0))
    grey = np.asarray(Image.fromarray(np.round(image * 255).astype(np.uint8)).resize((FUGC_SHAPE[2], FUGC_SHAPE[1]), Image.Resampling.BILINEAR))  # (width, height)
    return np.repeat(grey[None], 3, axis=0)
