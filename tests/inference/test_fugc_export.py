"""``hdc-ray export-fugc``: a model.py that runs alone (numpy + torch), in FUGC's shape, and agrees with ``predict``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_ray.cli import main
from hdc_ray.data import SyntheticSpec, generate_sample, resize_image
from hdc_ray.data.synthetic import sample_rng
from hdc_ray.data.tasks import CLASS_NAMES
from hdc_ray.inference import fugc_export
from hdc_ray.inference.fugc_model import resize_bilinear
from tests.inference.conftest import TinyRun, save_variant

# Run in a fresh interpreter with hdc-ray (installed in this venv) and Pillow made unimportable: the file must
# need numpy and torch only. Prints the masks' dtype/shape/values and saves them for the comparison.
RUN_ALONE = """
import json, sys
for name in ("hdc_ray", "PIL", "scipy", "cv2", "skimage"):
    sys.modules[name] = None
sys.path.insert(0, sys.argv[1])
import numpy as np
from model import model
net = model().load(sys.argv[1])
out = {}
for name in sys.argv[3:]:
    mask = net.predict(np.load(f"{sys.argv[2]}/{name}.npy"))
    np.save(f"{sys.argv[2]}/{name}.mask.npy", mask)
    out[name] = {"dtype": str(mask.dtype), "shape": list(mask.shape), "values": sorted(int(v) for v in np.unique(mask))}
print(json.dumps(out))
"""


def _fugc_x(seed: int, colour: bool = False) -> np.ndarray:
    """FUGC's X: uint8 (3, 336, 544); grey content in three identical channels (or three different ones)."""
    image, _ = generate_sample(SyntheticSpec("cervix", "easy", 96), sample_rng(seed, 0))
    grey = np.asarray(Image.fromarray(np.round(image * 255).astype(np.uint8)).resize((544, 336), Image.Resampling.BILINEAR))
    if not colour:
        return np.repeat(grey[None], 3, axis=0)
    return np.stack([grey, np.roll(grey, 7, axis=1), 255 - grey])


def _run_alone(folder: Path, arrays: dict[str, np.ndarray], tmp: Path) -> dict[str, dict[str, object]]:
    tmp.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", array)
    done = subprocess.run([sys.executable, "-c", RUN_ALONE, str(folder.resolve()), str(tmp.resolve()), *arrays], capture_output=True, text=True,
                          timeout=300, cwd=tmp)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _predicted_masks(capsys: pytest.CaptureFixture[str], tmp: Path, source: str, arrays: dict[str, np.ndarray], *extra: str) -> dict[str, np.ndarray]:
    """What ``hdc-ray predict`` writes for the same arrays saved as FUGC's RGB PNGs, one image per batch."""
    (tmp / "pngs").mkdir(exist_ok=True)
    for name, array in arrays.items():
        Image.fromarray(np.moveaxis(array, 0, -1)).save(tmp / "pngs" / f"{name}.png")  # (H, W, 3): what FUGC's PNGs hold
    assert main(["predict", source, str(tmp / "pngs"), "--out", str(tmp / "masks"), "--batch-size", "1", "--no-progress", *extra]) == 0
    capsys.readouterr()
    return {name: np.asarray(Image.open(tmp / "masks" / f"{name}.png")) for name in arrays}


def test_the_exported_model_runs_alone_in_fugc_shape_and_agrees_with_predict(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "submission"
    assert main(["export-fugc", str(tiny_run.folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["hdc_ray_fugc.pt", "model.py"]
    assert "imported alone in a fresh interpreter reproduces hdc-ray predict" in printed and "182784 of 182784 pixels" in printed
    arrays = {"grey": _fugc_x(1), "colour": _fugc_x(2, colour=True)}
    ran = _run_alone(out, arrays, tmp_path / "run")
    assert ran["grey"] == {"dtype": "uint8", "shape": [336, 544], "values": ran["grey"]["values"]}
    assert set(ran["grey"]["values"]) <= {0, 1, 2} and set(ran["colour"]["values"]) <= {0, 1, 2}  # type: ignore[arg-type]
    expected = _predicted_masks(capsys, tmp_path, str(tiny_run.folder), arrays)
    for name in arrays:
        got = np.load(tmp_path / "run" / f"{name}.mask.npy")
        assert got.dtype == np.uint8 and got.shape == (336, 544) and np.array_equal(got, expected[name]), name
    assert (expected["grey"] > 0).sum() > 1000  # the agreement covers foreground, not only background


def test_an_ensemble_with_flip_tta_exports_and_agrees_too(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = torch.load(tiny_run.folder / "best.pt", weights_only=True)["weights"]
    g = torch.Generator().manual_seed(3)
    other = save_variant(tiny_run.folder / "best.pt", tmp_path / "other.pt", weights={k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in weights.items()})
    out = tmp_path / "submission"
    assert main(["export-fugc", str(tiny_run.folder), "--ensemble", str(other), "--tta", "--out", str(out)]) == 0
    assert "an ensemble of 2; flip TTA" in (out / "model.py").read_text().splitlines()[3]
    arrays = {"scan": _fugc_x(4)}
    _run_alone(out, arrays, tmp_path / "run")
    expected = _predicted_masks(capsys, tmp_path, str(tiny_run.folder), arrays, "--ensemble", str(other), "--tta")
    assert np.array_equal(np.load(tmp_path / "run" / "scan.mask.npy"), expected["scan"])


def test_the_generated_file_imports_only_the_standard_library_numpy_and_torch(tiny_run: TinyRun, tmp_path: Path) -> None:
    from hdc_ray.inference.sources import load_models, resolve

    source = fugc_export.model_source(load_models(resolve(tiny_run.folder)), tta=False)
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"__future__", "functools", "math", "os", "typing", "numpy", "torch"}
    assert "class ConvBlock(nn.Module)" in source and "hdc_ray.model" not in source
    ast.parse(source, feature_version=(3, 8))  # FUGC's Docker image may hold an older Python than hdc-ray needs
    assert "strict=" not in source


@pytest.mark.parametrize(("shape", "size"), [((336, 544), 64), ((336, 544), 32), ((336, 544), 512), ((40, 60), 32), ((32, 96), 32), ((33, 70), 48)])
def test_the_numpy_resize_is_pillows_bit_for_bit(shape: tuple[int, int], size: int) -> None:
    image = (np.random.default_rng(size).integers(0, 256, shape) / 255.0).astype(np.float32)
    assert np.array_equal(resize_bilinear(image, size), resize_image(image, size))


def test_export_refuses_another_task_and_an_existing_folder(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = torch.load(tiny_run.folder / "best.pt", weights_only=True)["card"]
    psfh = save_variant(tiny_run.folder / "best.pt", tmp_path / "psfh.pt", card=card | {"task": "psfh", "class_names": list(CLASS_NAMES["psfh"])})
    assert main(["export-fugc", str(psfh), "--out", str(tmp_path / "a")]) == 2
    assert "segments psfh" in capsys.readouterr().err and not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("keep")
    assert main(["export-fugc", str(tiny_run.folder), "--out", str(tmp_path / "b")]) == 2
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "b" / "mine.txt").read_text() == "keep"


def test_a_model_py_that_cannot_run_alone_is_never_published(tiny_run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hdc_ray.inference.sources import load_models, resolve
    from hdc_ray.model import unet

    monkeypatch.setattr(fugc_export, "NETWORK_PARTS", (unet.ConvBlock, unet.Encoder, unet.Decoder, unet.stage_widths))  # _norm left out
    with pytest.raises(RuntimeError, match=r"fails when run alone .*nothing was written.*: NameError: name '_norm' is not defined"):
        fugc_export.export_fugc(load_models(resolve(tiny_run.folder)), tmp_path / "submission")
    assert not (tmp_path / "submission").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
