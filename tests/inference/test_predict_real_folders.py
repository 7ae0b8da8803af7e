"""``hdc-ray predict`` on real folders: nnU-Net names, probabilities, unreadable images, conversions said, geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdc_ray.data import MhaGeometry, SyntheticSpec, read_mha_image, write_fugc_layout, write_mha
from hdc_ray.inference import predict as predict_module
from hdc_ray.inference.batch import BatchPredictor, model_payload, unpack_row
from hdc_ray.inference.inputs import discover, read_picture
from hdc_ray.inference.sources import load_models, resolve
from tests.inference.conftest import TinyRun, predict_cli, write_png


def _grey(seed: int, shape: tuple[int, int] = (20, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return path


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ nnU-Net names


def test_nnunet_channel_suffixes_give_masks_named_by_case(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "imagesTs"
    write_png(folder / "case_a_0000.png", _grey(0))
    write_mha(folder / "case_b_0000.mha", np.stack([_grey(1)] * 3), (1.0, 0.3, 0.2))
    code, printed, _ = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(tmp_path / "masks"))
    assert code == 0 and "nnU-Net names: masks named by case, case_a_0000.png -> case_a.png" in printed
    assert _files(tmp_path / "masks") == ["case_a.png", "case_b.mha", "predictions.json"]
    assert discover(folder / "case_a_0000.png").images[0].mask_rel == Path("case_a.png")  # one file: the same rule


def test_names_that_are_not_all_channel_zero_are_kept(tmp_path: Path) -> None:
    for name in ("frame_0000.png", "frame_0001.png", "other.png"):
        write_png(tmp_path / "series" / name, _grey(0))
    series = discover(tmp_path / "series")
    assert [str(i.mask_rel) for i in series.images] == ["frame_0000.png", "frame_0001.png", "other.png"] and not series.nnunet_names
    assert len(series.warnings) == 1 and "frame_0000.png, frame_0001.png" in series.warnings[0] and "only the _0000 files" in series.warnings[0]
    for name in ("a_0000.png", "b.png"):
        write_png(tmp_path / "mixed" / name, _grey(0))
    mixed = discover(tmp_path / "mixed")
    assert [str(i.mask_rel) for i in mixed.images] == ["a_0000.png", "b.png"] and mixed.warnings == ()


# ------------------------------------------------------------------------------------ probabilities


def test_probabilities_are_nnunet_npz_at_native_size_and_their_argmax_is_the_mask(
    tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 48), 2, 1, seed=3)  # 48 px: not the model's 32
    plain, with_p = tmp_path / "plain", tmp_path / "with_p"
    assert predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(plain))[0] == 0
    code, printed, _ = predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(with_p), "--save-probabilities", "--tta")
    assert code == 0 and "probabilities in <mask name>.npz" in printed
    masks = sorted(with_p.rglob("labels/*.png"))
    assert len(masks) == 3
    for mask_path in masks:
        mask = np.asarray(Image.open(mask_path))
        with np.load(mask_path.with_suffix(".npz")) as saved:
            assert list(saved.keys()) == ["probabilities"]
            probabilities = saved["probabilities"]
        assert probabilities.dtype == np.float32 and probabilities.shape == (3, 48, 48)
        assert np.allclose(probabilities.sum(0), 1.0, atol=1e-5) and np.array_equal(probabilities.argmax(0), mask)
    assert not list(plain.rglob("*.npz"))  # only when asked
    manifest = json.loads((with_p / "predictions.json").read_text())
    assert manifest["probabilities"] == {"file": "<mask name>.npz", "array": "probabilities", "dtype": "float32", "layout": "(classes, height, width), native size"}


def test_saving_probabilities_does_not_change_the_masks(tiny_run: TinyRun, tmp_path: Path) -> None:
    models = load_models(resolve(tiny_run.folder))
    inputs = discover(write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 40), 3, 0, seed=4))
    for name, save in (("a", False), ("b", True)):
        predict_module.predict_folder(models, inputs, tmp_path / name, predict_module.PredictOptions(progress=False, save_probabilities=save))
    for image in inputs.images:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / image.mask_rel)), np.asarray(Image.open(tmp_path / "b" / image.mask_rel)))


# ----------------------------------------------------------------------------------- unreadable images


def _folder_with_bad_images(folder: Path) -> Path:
    write_png(folder / "a.png", _grey(0))
    _corrupt(folder / "b.png")
    write_png(folder / "c.png", np.dstack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 7, np.uint8)]))  # transparent: refused
    write_png(folder / "d.png", _grey(1))
    return folder


def test_continue_on_error_skips_unreadable_images_lists_them_and_exits_3(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, out = _folder_with_bad_images(tmp_path / "scans"), tmp_path / "masks"
    code, printed, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out), "--continue-on-error", "--batch-size", "2")
    assert code == 3
    assert _files(out) == ["a.png", "d.png", "errors.json", "predictions.json"] and not (tmp_path / "masks.partial").exists()
    errors = json.loads((out / "errors.json").read_text())
    assert (errors["images"], errors["masks_written"]) == (4, 2) and [e["image"] for e in errors["skipped"]] == ["b.png", "c.png"]
    assert "cannot read the image" in errors["skipped"][0]["error"] and "transparency refused" in errors["skipped"][1]["error"]
    assert f"error: skipped 2 unreadable image(s) of 4 (listed in {out / 'errors.json'})" in err and "b.png: cannot read" in err
    assert "predicted 2 image(s)" in printed
    assert json.loads((out / "predictions.json").read_text())["skipped"] == 2


def test_a_bad_image_late_in_a_run_keeps_the_masks_before_it(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, out = tmp_path / "scans", tmp_path / "masks"
    for i in range(5):
        write_png(folder / f"{i}.png", _grey(i))
    _corrupt(folder / "5.png")
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out), "--batch-size", "2")
    partial = tmp_path / "masks.partial"
    assert code == 2 and "5.png: cannot read the image" in err and "stopped after 5 of 6 image(s)" in err and f"kept in {partial}/" in err
    assert not out.exists() and _files(partial) == [*(f"{i}.png" for i in range(5)), "partial.json"]
    record = json.loads((partial / "partial.json").read_text())
    assert (record["complete"], record["images"], record["masks_written"]) == (False, 6, 5) and "5.png" in record["stopped_by"]
    # Our own partial folder is replaced by the next stopped run; a folder of that name that is not ours is left alone.
    (folder / "4.png").unlink()
    assert predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out))[0] == 2
    assert _files(partial) == [*(f"{i}.png" for i in range(4)), "partial.json"]
    (partial / "partial.json").unlink()
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out))
    assert code == 2 and f"kept in {tmp_path / 'masks.partial-2'}/" in err and len(_files(partial)) == 4


def test_ctrl_c_says_where_the_masks_written_are(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "scans"
    for i in range(3):
        write_png(folder / f"{i}.png", _grey(i))
    real, calls = predict_module.write_mask, []

    def interrupted_on_the_second(path: Path, mask: np.ndarray, geometry: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(path, mask, geometry)

    monkeypatch.setattr(predict_module, "write_mask", interrupted_on_the_second)
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(tmp_path / "masks"))
    assert code == 130 and f"interrupted: the 1 mask(s) written are kept in {tmp_path / 'masks.partial'}/" in err
    assert "--resume" not in err and _files(tmp_path / "masks.partial") == ["0.png", "partial.json"]


# ------------------------------------------------------------------------------- conversions are said


def _conversions(path: Path) -> list[tuple[str, bool]]:
    return [(c.what, c.lossy) for c in read_picture(path).conversions]


def test_every_lossy_or_guessed_conversion_is_named(tmp_path: Path) -> None:
    grey, other = _grey(0), _grey(1)
    cases = {
        "same.mha": (np.stack([grey] * 4), []),  # four identical slices: nothing lost
        "four.mha": (np.stack([grey, grey, grey, other]), [("4 slices: the 4th dropped (read as alpha)", True)]),
        "two.mha": (np.stack([grey, other]), [("2 slices: the 2nd dropped (one is used)", True)]),
        "mixed.mha": (np.stack([grey, other, grey]), [("3 different slices mixed to grey with colour weights (ITU-R 601 luma 0.299, 0.587, 0.114)", True)]),
        "float.mha": (grey.astype(np.float32) * 4.0, [("float32 values min-max scaled to [0, 1] per image", True)]),
        "unit.mha": (grey.astype(np.float32) / 255.0, [("float32 values in [0, 1], used as they are", False)]),
        "deep.mha": (grey.astype(np.uint16) * 200, [("16-bit, scaled by 1/65535", False)]),
        "signed.mha": (grey.astype(np.int16) - 100, [("int16 values min-max scaled to [0, 1] per image", True)]),
    }  # fmt: skip
    for name, (array, expected) in cases.items():
        assert _conversions(write_mha(tmp_path / name, array)) == expected, name
    both = np.stack([grey, other, grey, other]).astype(np.float64)
    assert [lossy for _, lossy in _conversions(write_mha(tmp_path / "both.mha", both))] == [True, True]
    assert _conversions(write_png(tmp_path / "rgb.png", np.dstack([grey] * 3))) == []  # FUGC's RGB PNGs of grey content


def test_repeated_conversions_are_one_warning_line_each(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(5):
        write_mha(folder / f"f{i}.mha", _grey(i).astype(np.float32) * 3.0)
    write_mha(folder / "slices.mha", np.stack([_grey(0), _grey(1), _grey(0), _grey(2)]))
    write_png(folder / "deep.png", _grey(0).astype(np.uint16) * 256)
    code, printed, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(tmp_path / "masks"))
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: 5 image(s) converted (float32 values min-max scaled to [0, 1] per image): f0.mha, f1.mha, f2.mha and 2 more (all in predictions.json)",
        "warning: 1 image(s) converted (4 slices: the 4th dropped (read as alpha); 3 different slices mixed to grey with colour weights "
        "(ITU-R 601 luma 0.299, 0.587, 0.114)): slices.mha",
    ]
    assert "note: 1 image(s) converted (16-bit, scaled by 1/65535): deep.png" in printed
    listed = json.loads((tmp_path / "masks" / "predictions.json").read_text())["conversions"]
    assert {(c["level"], c["count"]) for c in listed} == {("warning", 5), ("warning", 1), ("note", 1)}
    assert next(c for c in listed if c["count"] == 5)["images"] == [f"f{i}.mha" for i in range(5)]


# ------------------------------------------------------------------------------------------- geometry


def test_mha_masks_carry_the_image_origin_and_direction(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sitk = pytest.importorskip("SimpleITK")
    volume = MhaGeometry((0.3, 0.2, 1.0), (12.5, -4.0, 7.0), (0.6, -0.8, 0.0, 0.8, 0.6, 0.0, 0.0, 0.0, 1.0))
    plane = MhaGeometry((0.25, 0.4), (3.0, 5.0), (0.0, 1.0, 1.0, 0.0))
    (tmp_path / "scans").mkdir()
    write_mha(tmp_path / "scans" / "slices.mha", np.stack([_grey(0)] * 3), geometry=volume)
    write_mha(tmp_path / "scans" / "flat.mha", _grey(1), geometry=plane)
    assert predict_cli(capsys, str(tiny_run.folder), str(tmp_path / "scans"), "--out", str(tmp_path / "masks"))[0] == 0
    assert read_mha_image(tmp_path / "masks" / "flat.mha")[1] == plane
    mask = sitk.ReadImage(str(tmp_path / "masks" / "slices.mha"))
    image = sitk.ReadImage(str(tmp_path / "scans" / "slices.mha"))[:, :, 0]  # what a SimpleITK user overlays it on
    assert mask.GetSize() == image.GetSize() and mask.GetPixelID() == sitk.sitkUInt8
    for ours, theirs in ((mask.GetSpacing(), image.GetSpacing()), (mask.GetOrigin(), image.GetOrigin()), (mask.GetDirection(), image.GetDirection())):
        assert ours == pytest.approx(theirs)


def test_batch_rows_carry_geometry_probabilities_and_read_errors(tiny_run: TinyRun, tmp_path: Path) -> None:
    """What a Ray Data actor ships back (no Ray here): one row per path, an unreadable one marked, not raised."""
    plane = MhaGeometry((0.25, 0.4), (3.0, 5.0), (0.0, 1.0, 1.0, 0.0))
    good, bad = write_mha(tmp_path / "good.mha", _grey(0), geometry=plane), _corrupt(tmp_path / "bad.png")
    predictor = BatchPredictor(model_payload(load_models(resolve(tiny_run.folder))), keep_probabilities=True)
    batch = predictor({"index": np.array([0, 1]), "path": np.array([str(good), str(bad)], dtype=object)})
    first, second = (unpack_row({k: v[i] for k, v in batch.items()}, 3) for i in range(2))
    assert first.error == "" and first.mask.shape == (20, 28) and first.picture.geometry == plane
    assert first.probabilities is not None and first.probabilities.shape == (3, 20, 28)
    assert np.array_equal(first.probabilities.argmax(0), first.mask)
    assert "bad.png: cannot read the image" in second.error and second.probabilities is None
