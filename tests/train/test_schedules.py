"""The real-data configs at short schedules: the authors' cosine on their long run, ~its start on a short one."""

from __future__ import annotations

import math

import pytest

from hdc_ray.config import load_config
from hdc_ray.train.schedules import lr_at


def _plain_cosine(lr: float, step: int, total: int) -> float:
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


@pytest.mark.parametrize("name", ["fugc", "psfh"])
def test_the_shipped_long_run_is_the_authors_cosine_to_zero(name: str) -> None:
    cfg = load_config(name, ["data.root=/nowhere"])
    total = cfg.train.epochs * cfg.train.iters_per_epoch
    assert total == cfg.train.cosine_steps == 10_000 and cfg.train.schedule == "cosine"
    for step in (0, 1, 2_500, 5_000, 9_999):
        assert lr_at(cfg, step) == pytest.approx(_plain_cosine(cfg.train.lr, step, total), rel=1e-12)
    assert lr_at(cfg, total - 1) < 1e-3 * cfg.train.lr


@pytest.mark.parametrize("name", ["fugc", "psfh"])
@pytest.mark.parametrize("epochs", [2, 4, 8])
def test_a_short_run_is_the_start_of_the_authors_schedule_not_a_compressed_one(name: str, epochs: int) -> None:
    # 200-800 steps: the runs that lost the small class under a cosine compressed to their length (issue 24).
    cfg = load_config(name, ["data.root=/nowhere", f"train.epochs={epochs}"])
    long = load_config(name, ["data.root=/nowhere"])
    steps = epochs * cfg.train.iters_per_epoch
    assert [lr_at(cfg, t) for t in range(0, steps, 50)] == [lr_at(long, t) for t in range(0, steps, 50)]
    assert lr_at(cfg, steps - 1) >= 0.98 * cfg.train.lr  # a compressed cosine would be ~0 here


def test_a_run_longer_than_cosine_steps_decays_over_its_own_length() -> None:
    cfg = load_config("psfh", ["data.root=/nowhere", "train.epochs=200"])
    assert lr_at(cfg, 20_000 - 1) < 1e-3 * cfg.train.lr and lr_at(cfg, 10_000) == pytest.approx(0.5 * cfg.train.lr)


def test_without_cosine_steps_the_cosine_is_the_runs_own() -> None:
    cfg = load_config("tiny", ["train.schedule=cosine"])
    assert cfg.train.cosine_steps is None
    total = cfg.train.epochs * cfg.train.iters_per_epoch
    assert [lr_at(cfg, t) for t in range(total)] == [_plain_cosine(cfg.train.lr, t, total) for t in range(total)]
