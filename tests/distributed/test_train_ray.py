"""Ray Train layer: the worker in Train local mode, DDP over 2 workers vs 1, the CLI, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("ray")

from hdc_ray.config import load_config
from hdc_ray.distributed.cluster import ClusterError, check_placement
from hdc_ray.distributed.launch import build_trainer
from hdc_ray.distributed.worker import STATE_FILE

pytestmark = [pytest.mark.ray]


def test_the_worker_runs_in_train_local_mode(tmp_path: Path) -> None:
    # num_workers=0: Train runs the worker function in this process, no cluster needed (seconds).
    cfg = load_config("tiny", ["train.epochs=2"])
    result = build_trainer(cfg, name="local", storage_path=str(tmp_path), num_workers=0).fit()
    assert result.error is None
    final = result.metrics
    assert final["epoch"] == 2 and final["done"] == 1 and final["method"] == "hdc"
    assert 0.0 <= final["test_dice_fg"] <= 1.0 and final["best_val_dice_fg"] >= final["val_dice_fg"] - 1e-12
    assert final["split_hash"] and final["n_labeled"] == 6 and final["label_ratio"] == pytest.approx(0.25)
    assert {"train_loss_sup", "train_loss_cg", "train_loss_mi", "train_loss_pc"} <= set(final)


@pytest.mark.slow
def test_two_workers_match_one_worker_at_the_same_global_batch(ray_session: None, tmp_path: Path) -> None:
    # Same global batch (4 labelled) split 2 + 2, group norm, gloo all-reduce: only float summation order
    # differs, so losses agree to ~1e-5 and Dice to 1e-3 (a pixel flip or two at most).
    finals = {}
    for workers in (1, 2):
        cfg = load_config("tiny", ["train.method=supervised", "train.epochs=2", f"dist.workers={workers}", "dist.cpus_per_worker=0.5"])
        result = build_trainer(cfg, name=f"w{workers}", storage_path=str(tmp_path)).fit()
        assert result.error is None, result.error
        finals[workers] = result.metrics
    one, two = finals[1], finals[2]
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4, abs=1e-5)
    for key in ("val_dice_fg", "test_dice_fg"):
        assert two[key] == pytest.approx(one[key], abs=1e-3), key
    assert two["val_n_cases"] == one["val_n_cases"] == 6  # whole split scored, not rank 0's half
    with result.checkpoint.as_directory() as folder:  # the 2-worker run's last checkpoint, from rank 0
        state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
    assert state["epoch"] == 2 and set(state) >= {"trainable", "teacher", "optimizer", "best_weights", "history", "card"}


@pytest.mark.slow
def test_unimatch_on_two_workers_matches_one_worker(ray_session: None, tmp_path: Path) -> None:
    # UniMatch's one forward (weak, two strong views, the fp stream) under DDP, and its no-grad partner pass
    # beside it. The CE form is a mean over pixels (equal shards: the mean of the ranks' means), and a low
    # threshold makes the unlabelled terms act, so 1 and 2 workers agree only if every rank builds its share
    # of the same views, boxes and partner batch.
    finals = {}
    for workers in (1, 2):
        cfg = load_config("tiny", ["train.method=unimatch", "loss.fixmatch_loss=ce", "loss.fixmatch_threshold=0.5", "train.epochs=2",
                                   f"dist.workers={workers}", "dist.cpus_per_worker=0.5"])  # fmt: skip
        result = build_trainer(cfg, name=f"uni{workers}", storage_path=str(tmp_path)).fit()
        assert result.error is None, result.error
        finals[workers] = result.metrics
    one, two = finals[1], finals[2]
    assert one["method"] == "unimatch" and one["train_loss_u_fp"] > 0 and one["train_loss_u_s"] > 0
    for key in ("train_loss", "train_loss_u_s", "train_loss_u_fp", "train_confident_fraction"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key
    assert two["test_dice_fg"] == pytest.approx(one["test_dice_fg"], abs=1e-3)


@pytest.mark.slow
def test_cli_trains_hdc_on_two_workers_and_refuses_to_overwrite(ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hdc_ray.cli import main

    out = tmp_path / "hdc2"
    assert main(["train", "tiny", "--workers", "2", "--out", str(out), "--set", "dist.cpus_per_worker=0.5"]) == 0
    printed = capsys.readouterr().out
    assert "Ray Train: 2 worker(s)" in printed and "best epoch" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "hdc" and 0.0 <= metrics["test_dice_fg"] <= 1.0 and metrics["checkpoint_path"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint_"))  # Train's retained checkpoints
    assert main(["train", "tiny", "--workers", "2", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume with one more epoch: Train restores the run of the same name from its latest checkpoint.
    assert main(["train", "tiny", "--workers", "2", "--out", str(out), "--resume", "--set", "dist.cpus_per_worker=0.5", "--set", "train.epochs=3"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["epoch"] == 3 and resumed["split_hash"] == metrics["split_hash"]


def test_placement_is_checked_before_anything_starts() -> None:
    with pytest.raises(ClusterError, match="no GPU"):
        check_placement(1, 1.0, True, {"CPU": 8.0})
    with pytest.raises(ClusterError, match="3 GPU workers"):
        check_placement(3, 1.0, True, {"CPU": 8.0, "GPU": 2.0})
    with pytest.raises(ClusterError, match="8 CPUs asked for, the cluster has 4"):
        check_placement(8, 1.0, False, {"CPU": 4.0})
    check_placement(4, 1.0, False, {"CPU": 4.0})  # exactly fits


def _cli(*args: str, cwd: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hdc_ray.cli", "train", "tiny", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - start


@pytest.mark.slow
def test_bad_cluster_input_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    done, seconds = _cli("--workers", "1", "--address", "127.0.0.1:1", "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert done.returncode == 2 and "no Ray head node answers at 127.0.0.1:1" in done.stderr and seconds < 30
    assert "Traceback" not in done.stderr
    done, _ = _cli("--workers", "1", "--gpu", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert done.returncode == 2 and "no GPU" in done.stderr and "Traceback" not in done.stderr
    done, _ = _cli("--workers", "64", "--set", "train.batch_labeled=64", "--set", "train.batch_unlabeled=64", "--out", str(tmp_path / "c"), cwd=tmp_path)
    assert done.returncode == 2 and "64 workers" in done.stderr and "Traceback" not in done.stderr
