"""``hdc-ray predict``: both layouts, native sizes, model cards, refused checkpoints, every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_ray.data import SyntheticSpec, read_mha, write_fugc_layout, write_mha, write_psfh_layout
from hdc_ray.data.tasks import CLASS_NAMES
from hdc_ray.inference import predict as predict_module
from hdc_ray.inference.inputs import InputError, discover, read_picture
from hdc_ray.inference.predictor import Predictor
from hdc_ray.inference.sources import load_model, load_models, resolve
from hdc_ray.train.card import ModelCard
from hdc_ray.train.checkpoint import CheckpointError
from tests.inference.conftest import TinyRun, predict_cli, save_variant, write_png


def _no_staging_left(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def _psfh_checkpoint(tiny_run: TinyRun, path: Path) -> Path:
    """The tiny run's weights (3 classes) carded as a PSFH model: a checkpoint of another task."""
    card = torch.load(tiny_run.folder / "best.pt", weights_only=True)["card"]
    return save_variant(tiny_run.folder / "best.pt", path, card=card | {"task": "psfh", "class_names": list(CLASS_NAMES["psfh"])})


# ------------------------------------------------------------------------------------- model cards


def test_every_checkpoint_of_a_run_carries_its_card(tiny_run: TinyRun) -> None:
    files = [tiny_run.folder / "best.pt", *sorted((tiny_run.folder / "checkpoints").glob("epoch_*.pt"))]
    assert len(files) == 3
    for path in files:
        state = torch.load(path, map_location="cpu", weights_only=True)
        card = ModelCard.from_dict(state["card"])
        assert (card.task, card.class_names, card.input_size) == ("cervix", CLASS_NAMES["cervix"], 32)
        assert (card.model.base_width, card.model.depth) == (8, 3)
        assert load_model(resolve(path)[0]).warnings == ()


def test_a_checkpoint_without_a_card_falls_back_to_the_config_it_carries_or_beside_it(tiny_run: TinyRun, tmp_path: Path) -> None:
    old = save_variant(tiny_run.folder / "best.pt", tmp_path / "old" / "best.pt", card=None)
    model = load_model(resolve(old)[0])
    assert model.card.input_size == 32 and any("predates model cards" in w for w in model.warnings)
    # Neither a card nor a config inside: config.yaml beside it, else a clear refusal.
    bare = save_variant(tiny_run.folder / "best.pt", tmp_path / "bare" / "best.pt", card=None, metrics={})
    with pytest.raises(CheckpointError, match="no model card and no config"):
        load_model(resolve(bare)[0])
    (bare.parent / "config.yaml").write_text((tiny_run.folder / "config.yaml").read_text())
    assert load_model(resolve(bare)[0]).card.task == "cervix"


def test_checkpoints_of_another_task_or_class_count_are_refused(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = torch.load(tiny_run.folder / "best.pt", weights_only=True)["card"]
    five = save_variant(tiny_run.folder / "best.pt", tmp_path / "five.pt", card=card | {"class_names": [*card["class_names"], "a", "b"]})
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        load_model(resolve(five)[0])
    psfh = _psfh_checkpoint(tiny_run, tmp_path / "psfh.pt")
    with pytest.raises(CheckpointError, match=r"--ensemble: .* segments psfh"):
        load_models([*resolve(tiny_run.folder), *resolve(psfh)])
    fugc = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 32), 1, 0, seed=0)
    code, _, err = predict_cli(capsys, str(psfh), str(fugc), "--out", str(tmp_path / "masks"))
    assert code == 2 and "segments psfh" in err and "FUGC layout" in err and "cervix" in err
    assert not (tmp_path / "masks").exists()


def test_a_pytorch_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle")
    write_png(tmp_path / "img" / "a.png", np.zeros((8, 8), np.uint8))
    for name, expected in (("foreign.pt", "not an hdc-ray checkpoint"), ("garbage.pt", "corrupt or not a checkpoint")):
        code, _, err = predict_cli(capsys, str(tmp_path / name), str(tmp_path / "img"), "--out", str(tmp_path / "o"))
        assert code == 2 and expected in err and name in err


# -------------------------------------------------------------------------------------------- layouts


def test_fugc_layout_gets_index_pngs_of_the_same_stem_at_native_size(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 48), 3, 2, seed=1)  # 48 px: not the model's 32
    out = tmp_path / "masks"
    code, printed, _ = predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(out), "--overlays")
    assert code == 0
    assert "images/s" in printed and "ms per image" in printed and "warm-up excluded" in printed
    assert f"checkpoint: {tiny_run.folder / 'best.pt'}" in printed
    images = sorted(root.glob("train/*/images/*.png"))
    assert len(images) == 5
    for image in images:
        rel = image.relative_to(root)
        mask = Image.open(out / rel.parent.parent / "labels" / rel.name)
        assert mask.mode == "L" and mask.size == (48, 48)
        assert set(np.unique(np.asarray(mask))) <= {0, 1, 2}
        assert Image.open(out / "overlays" / rel).mode == "RGB"
    manifest = json.loads((out / "predictions.json").read_text())
    assert manifest["layout"] == "fugc" and manifest["images"] == 5 and manifest["card"]["task"] == "cervix"
    assert _no_staging_left(tmp_path)


def test_psfh_layout_gets_mha_labels_with_the_image_spacing(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    psfh = _psfh_checkpoint(tiny_run, tmp_path / "psfh.pt")
    root = write_psfh_layout(tmp_path / "psfh", SyntheticSpec("psfh", "easy", 40), 2, seed=2, spacing=(0.2, 0.3))
    out = tmp_path / "masks"
    code, _, _ = predict_cli(capsys, str(psfh), str(root), "--out", str(out))
    assert code == 0
    for name in ("00001.mha", "00002.mha"):
        mask, spacing = read_mha(out / "label_mha" / name)
        assert mask.shape == (40, 40) and mask.dtype == np.uint8 and spacing == pytest.approx((0.2, 0.3))
    sitk = pytest.importorskip("SimpleITK")
    image = sitk.ReadImage(str(out / "label_mha" / "00001.mha"))
    assert image.GetSpacing() == pytest.approx((0.3, 0.2)) and sitk.GetArrayFromImage(image).shape == (40, 40)


def test_a_plain_folder_of_mixed_formats_and_sizes(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    write_png(folder / "wide.png", rng.integers(0, 255, (33, 70), dtype=np.uint8))
    write_png(folder / "colour.jpg", rng.integers(0, 255, (50, 20, 3), dtype=np.uint8))
    write_png(folder / "scan.tif", rng.integers(0, 255, (31, 31), dtype=np.uint8))
    write_mha(folder / "slice.mha", np.stack([rng.integers(0, 255, (24, 30), dtype=np.uint8)] * 3), (1.0, 0.5, 0.4))
    out = tmp_path / "masks"
    code, printed, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out))
    assert code == 0
    assert Image.open(out / "wide.png").size == (70, 33) and Image.open(out / "colour.png").size == (20, 50)
    assert Image.open(out / "scan.png").size == (31, 31)
    mask, spacing = read_mha(out / "slice.mha")
    assert mask.shape == (24, 30) and spacing == pytest.approx((0.5, 0.4))
    assert "warning: 1 image(s) converted (3 different channels mixed to grey with colour weights" in err and "colour.jpg" in err
    assert "slice.mha" not in err + printed  # three identical slices: one kept, nothing lost, nothing to say


def test_masks_are_the_working_resolution_argmax_resized_by_nearest(tiny_run: TinyRun) -> None:
    predictor = Predictor([load_model(resolve(tiny_run.folder)[0])])
    image = np.random.default_rng(1).random((32, 32), dtype=np.float32)
    with torch.no_grad():
        direct = predictor.nets[0](torch.from_numpy(image)[None, None]).logits.argmax(1)[0].numpy()
    assert np.array_equal(predictor.predict([image])[0], direct)
    # A 64 x 96 image: the network sees its bilinear 32 x 32 version, and each label pixel becomes a 2 x 3 block.
    big_image = np.kron(image, np.ones((2, 3), np.float32))
    seen = np.asarray(Image.fromarray(big_image).resize((32, 32), Image.Resampling.BILINEAR))
    big = predictor.predict([big_image])[0]
    assert big.shape == (64, 96)
    assert np.array_equal(big, np.kron(predictor.predict([np.clip(seen, 0, 1)])[0], np.ones((2, 3), np.uint8)))


def test_tta_and_ensembles_average_probabilities(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = torch.load(tiny_run.folder / "best.pt", weights_only=True)["weights"]
    g = torch.Generator().manual_seed(1)
    other = save_variant(tiny_run.folder / "best.pt", tmp_path / "other.pt", weights={k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in weights.items()})
    one, epoch = load_model(resolve(tiny_run.folder)[0]), load_model(resolve(other)[0])
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    p_one, p_epoch = Predictor([one]).probabilities(x), Predictor([epoch]).probabilities(x)
    assert not torch.allclose(p_one, p_epoch)
    assert torch.allclose(Predictor([one, epoch]).probabilities(x), (p_one + p_epoch) / 2, atol=1e-6)
    flipped = Predictor([one]).probabilities(x.flip(-1)).flip(-1)
    assert torch.allclose(Predictor([one], tta=True).probabilities(x), (p_one + flipped) / 2, atol=1e-6)
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 32), 1, 0, seed=0)
    code, printed, _ = predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(tmp_path / "m"), "--tta", "--ensemble", str(other))
    assert code == 0 and "an ensemble of 2" in printed and "flip TTA" in printed
    assert json.loads((tmp_path / "m" / "predictions.json").read_text())["ensemble"] == 2


# ----------------------------------------------------------------------------------------- bad input


def _two_frames(folder: Path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "m.tif", save_all=True, append_images=[Image.fromarray(np.ones((8, 8), np.uint8))])


def _same_stem(folder: Path) -> None:
    write_png(folder / "a.png", np.zeros((8, 8), np.uint8))
    write_png(folder / "a.jpg", np.zeros((8, 8), np.uint8))


BAD_INPUTS = {
    "corrupt": (lambda f: (f / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "ok.png: cannot read the image"),
    "transparent": (lambda f: write_png(f / "t.png", np.dstack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 7, np.uint8)])),
                    "t.png: 4-channel (RGBA) image with transparency refused"),
    "empty": (lambda f: (f / "notes.txt").write_text("x"), "no images to segment"),
    "stems": (_same_stem, "shares its stem"),
    "frames": (_two_frames, "m.tif: has 2 frames"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_inputs_are_named_and_out_is_not_written(name: str, tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, expected = BAD_INPUTS[name]
    folder = tmp_path / name
    folder.mkdir()
    good_first = name in ("corrupt", "transparent")
    write_png(folder / "0_fine.png", np.full((8, 8), 100, np.uint8)) if good_first else None
    make(folder)
    out = tmp_path / "out"
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(out))
    assert code == 2 and expected in err, err
    assert not out.exists() and _no_staging_left(tmp_path)
    if good_first:  # read before the bad one: its mask is kept, apart from OUT, and the message says where
        assert "stopped after 1 of 2 image(s)" in err and f"kept in {out}.partial/" in err and "--continue-on-error" in err
        assert sorted(p.name for p in (tmp_path / "out.partial").iterdir()) == ["0_fine.png", "partial.json"]
    elif name == "frames":  # the only image: nothing was written, nothing is kept
        assert "no mask was written" in err and not (tmp_path / "out.partial").exists()


def test_a_missing_input_is_named(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 2 and "nowhere: no such file or folder" in err


def test_16_bit_and_opaque_4_channel_images_are_converted_and_said_so(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "scans"
    write_png(folder / "deep.png", np.linspace(0, 65535, 12 * 20).reshape(12, 20).astype(np.uint16))
    write_png(folder / "rgba.png", np.dstack([np.full((10, 10, 3), 128, np.uint8), np.full((10, 10), 255, np.uint8)]))
    assert read_picture(folder / "deep.png").image.max() == pytest.approx(1.0)
    assert read_picture(folder / "rgba.png").image.max() == pytest.approx(128 / 255)
    code, printed, _ = predict_cli(capsys, str(tiny_run.folder), str(folder), "--out", str(tmp_path / "m"))
    assert code == 0
    assert "converted (16-bit, scaled by 1/65535): deep.png" in printed
    assert "converted (RGBA: fully opaque alpha channel dropped): rgba.png" in printed
    assert Image.open(tmp_path / "m" / "deep.png").size == (20, 12)


def test_an_existing_output_is_kept_without_overwrite_and_replaced_with_it(tiny_run: TinyRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 32), 2, 0, seed=0)
    out = tmp_path / "masks"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(out))
    assert code == 2 and "--overwrite" in err and (out / "mine.txt").read_text() == "keep"
    code, _, err = predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(root), "--overwrite")
    assert code == 2 and "is (or contains) the input folder" in err
    assert predict_cli(capsys, str(tiny_run.folder), str(root), "--out", str(out), "--overwrite")[0] == 0
    assert not (out / "mine.txt").exists() and len(list(out.rglob("labels/*.png"))) == 2


def test_an_interrupted_run_keeps_its_masks_apart_from_out(tiny_run: TinyRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_fugc_layout(tmp_path / "fugc", SyntheticSpec("cervix", "easy", 32), 4, 0, seed=0)
    out = tmp_path / "masks"
    out.mkdir()
    (out / "previous.png").write_bytes(b"old result")
    written: list[Path] = []
    real = predict_module.write_mask

    def dies_after_two(path: Path, mask: np.ndarray, geometry: object) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)
        real(path, mask, geometry)

    monkeypatch.setattr(predict_module, "write_mask", dies_after_two)
    models = load_models(resolve(tiny_run.folder))
    with pytest.raises(KeyboardInterrupt) as stopped:
        predict_module.predict_folder(models, discover(root), out, predict_module.PredictOptions(progress=False), overwrite=True)
    assert len(written) == 2 and all(not p.exists() for p in written)  # the two masks lived in the staging folder only
    assert sorted(p.name for p in out.iterdir()) == ["previous.png"] and _no_staging_left(tmp_path)
    partial = tmp_path / "masks.partial"
    assert sorted(p.name for p in partial.rglob("*.png")) == sorted(p.name for p in written)  # kept, apart from OUT
    record = json.loads((partial / "partial.json").read_text())
    assert record["complete"] is False and record["masks_written"] == 2 and record["stopped_by"].startswith("KeyboardInterrupt")
    assert any(f"kept in {partial}/" in note for note in stopped.value.__notes__)


def test_discover_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    write_png(tmp_path / "deep" / "images" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"sub-folders \(images\)"):
        discover(tmp_path / "deep")
    (tmp_path / "train" / "labeled_data" / "images").mkdir(parents=True)
    with pytest.raises(InputError, match="a FUGC layout without images"):
        discover(tmp_path)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match="not an image file"):
        discover(tmp_path / "x.txt")
