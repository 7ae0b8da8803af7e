"""A refused or broken run writes nothing: bad data, an SSL method without unlabelled images, an
unwritable --out, corrupt and foreign checkpoints (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hdc_ray.config import load_config
from hdc_ray.data.errors import DataError
from hdc_ray.outputs import OutputError
from hdc_ray.train import checkpoint
from hdc_ray.train.run import ResumeError, run_local

TINY = ["train.epochs=1", "train.iters_per_epoch=1"]


def _mha(path: Path, array: np.ndarray) -> None:
    header = f"ObjectType = Image\nNDims = 2\nDimSize = {array.shape[1]} {array.shape[0]}\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + array.astype(np.uint8).tobytes())


def _psfh_with_one_corrupt_image(root: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _mha(root / "image_mha" / f"{i:05d}.mha", rng.integers(0, 255, (16, 16)))
        _mha(root / "label_mha" / f"{i:05d}.mha", rng.integers(0, 3, (16, 16)))
    (root / "image_mha" / "00003.mha").write_bytes(b"\x00\x01garbage" * 10)  # neither header nor data
    return root


def test_bad_data_leaves_no_run_folder(tmp_path: Path) -> None:
    root = _psfh_with_one_corrupt_image(tmp_path / "psfh")
    cfg = load_config("tiny", [*TINY, "data.source=psfh", f"data.root={root}", "data.n_val=2", "data.n_test=2", "data.label_ratio=0.5"])
    out = tmp_path / "runs" / "bad"
    with pytest.raises(DataError, match=r"00003\.mha: not a MetaImage file"):
        run_local(cfg, out, progress=False)
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_a_missing_data_root_leaves_an_existing_folder_as_it_was(tmp_path: Path) -> None:
    cfg = load_config("tiny", [*TINY, "data.source=psfh", f"data.root={tmp_path / 'nowhere'}"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="PSFH root folder does not exist"):
        run_local(cfg, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_ssl_method_without_unlabelled_images_is_refused_before_training(tmp_path: Path) -> None:
    cfg = load_config("tiny", [*TINY, "data.label_ratio=1.0", "train.method=hdc"])
    with pytest.raises(DataError, match=r"train.method=hdc is semi-supervised but data.label_ratio=1.0 leaves no unlabelled"):
        run_local(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_supervised_with_every_label_trains(tmp_path: Path) -> None:
    cfg = load_config("tiny", [*TINY, "data.label_ratio=1.0", "train.method=supervised"])
    _, summary = run_local(cfg, tmp_path / "out", progress=False)
    assert summary["label_ratio"] == 1.0 and (tmp_path / "out" / "metrics.json").exists()


def test_an_out_under_a_regular_file_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cfg = load_config("tiny", TINY)
    with pytest.raises(OutputError, match=r"is a file, not a folder"):
        run_local(cfg, tmp_path / "file" / "out", progress=False)


def _trained(tmp_path: Path) -> tuple[Path, Path]:
    cfg = load_config("tiny", [*TINY, "train.epochs=2"])
    out = tmp_path / "run"
    run_local(cfg, out, progress=False)
    kept = checkpoint.list_epochs(out / "checkpoints")
    assert len(kept) == 2  # tiny keeps 2
    return out, kept[-1]


def test_a_corrupt_newest_checkpoint_is_named_and_skipped_and_all_corrupt_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, latest = _trained(tmp_path)
    latest.write_bytes(np.random.default_rng(0).bytes(512))
    run_local(load_config("tiny", [*TINY, "train.epochs=3"]), out, resume=True, progress=False)
    printed = capsys.readouterr().out
    assert f"{latest} is unreadable" in printed and "resuming from an earlier checkpoint" in printed
    assert "epoch_0001.pt" in printed.split("resuming from ")[-1]  # the earlier one, not a fresh start
    for path in checkpoint.list_epochs(out / "checkpoints"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError) as err:
        run_local(load_config("tiny", [*TINY, "train.epochs=4"]), out, resume=True, progress=False)
    text = str(err.value)
    assert "no checkpoint in" in text and "corrupt or not a checkpoint" in text and "\n" not in text
    assert "weights_only" not in text and "\n" not in text


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    _, latest = _trained(tmp_path)
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or not a checkpoint"):
        checkpoint.load(latest)


def test_foreign_pytorch_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "epoch_0001.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(checkpoint.CheckpointError, match=r"a PyTorch file, but not an hdc-ray checkpoint"):
        checkpoint.load(path)


def test_resume_with_a_changed_config_names_the_keys(tmp_path: Path) -> None:
    out, _ = _trained(tmp_path)
    with pytest.raises(ResumeError, match=r"different configuration \(train.lr: 0.003 -> 0.5\)"):
        run_local(load_config("tiny", [*TINY, "train.lr=0.5"]), out, resume=True, progress=False)
