"""bench/ssl_benchmark.py's tables: paired differences on the same split against any arm, arms missing from a
run skipped (not a crash after an hour of training), and --resume refusing runs made with other settings."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench_scripts import load_bench

REPO = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    return load_bench("ssl_benchmark")


def _run(method: str, seed: int, dice: float) -> dict[str, object]:
    return {"method": method, "count": 4, "n_labeled": 4, "seed": seed, "seconds": 10.0 * (1 + (method != "supervised")), "test_dice_fg": dice,
            "test_hd95_fg": 5.0, "min_class_dice": dice - 0.1, "min_confident_after_ramp": None}  # fmt: skip


RUNS = [_run("supervised", 0, 0.60), _run("supervised", 1, 0.50), _run("soft", 0, 0.66), _run("soft", 1, 0.53)]


def test_paired_differences_are_per_split_against_the_chosen_arm() -> None:
    rows = _bench().paired(RUNS, [4], ("supervised", "hdc", "soft:loss.pc_kind=soft"), ref="soft")
    # 95% interval: 4.5 -+ t(0.975, 1 dof) = 12.71 x 2.12 / sqrt(2); hdc is absent: no row, no crash
    assert rows[2:] == ["| 4 | supervised | +4.5 | 2.1 | -14.6 to +23.6 | +6.0, +3.0 | True |"]


def test_summary_skips_absent_arms_and_gives_time_against_the_reference() -> None:
    rows = _bench().summarise(RUNS, [4], ("supervised", "hdc", "soft:x=1"), ref="soft")
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| supervised@4", "| soft@4"]
    assert rows[2].endswith("| 10 | 0.50 |") and rows[3].endswith("| 20 | 1.00 |")


def test_summary_gives_the_confident_fraction_after_the_ramp_and_at_the_last_epoch() -> None:
    runs = [_run("hdc", 0, 0.6) | {"min_confident_after_ramp": 0.001, "last_confident": 0.8},
            _run("hdc", 1, 0.6) | {"min_confident_after_ramp": 0.0, "last_confident": 0.7},
            _run("supervised", 0, 0.6)]  # fmt: skip
    rows = _bench().summarise(runs, [4], ("supervised", "hdc"))
    assert rows[2].split(" | ")[4] == "-; -"  # supervised: no mask
    assert rows[3].split(" | ")[4] == "0.000; 0.700"  # hdc: the worst run at each point


def test_resume_refuses_runs_made_with_other_settings(tmp_path: Path) -> None:
    bench = _bench()
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([RUNS[0] | {"overrides": ["data.task=psfh"]}]))
    assert bench._previous_runs(path, ["data.task=psfh"])[0]["method"] == "supervised"
    with pytest.raises(SystemExit, match="other --set values"):
        bench._previous_runs(path, [])


def test_resume_reruns_a_stored_run_whose_arm_or_config_changed(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    same, redefined, old, new = ("tiny", [], "hdc", 4, 0), ("tiny", [], "x:loss.w_cg=0.5", 4, 0), ("tiny", [], "supervised", 4, 1), ("tiny", [], "hdc", 4, 1)
    stored = [{"method": "hdc", "count": 4, "seed": 0, "config_key": bench.config_key(bench.arm_config(*same))},
              {"method": "x", "count": 4, "seed": 0, "config_key": bench.config_key(bench.arm_config("tiny", [], "x:loss.w_cg=0", 4, 0))},
              {"method": "supervised", "count": 4, "seed": 1}]  # fmt: skip
    kept, jobs = bench._kept_and_todo(stored, [same, redefined, old, new])
    assert [r["method"] for r in kept] == ["hdc", "supervised"] and jobs == [redefined, new]
    out = capsys.readouterr().out
    assert "1 stored runs trained another config" in out and "1 stored runs predate config fingerprints" in out
    # the seed is part of the fingerprint's input, the arm's name is not: same arm on another split differs
    assert bench.config_key(bench.arm_config(*same)) != bench.config_key(bench.arm_config(*new))


def test_paired_plot_draws_one_row_per_arm_and_skips_when_nothing_pairs(tmp_path: Path) -> None:
    bench = _bench()
    bench.plot_paired(RUNS, tmp_path / "paired.png", [4], ("supervised", "soft:x=1"), ref="soft")
    assert (tmp_path / "paired.png").stat().st_size > 1000
    bench.plot_paired(RUNS, tmp_path / "none.png", [4], ("supervised",), ref="hdc")  # no hdc runs: no figure, no crash
    assert not (tmp_path / "none.png").exists()


def test_per_class_table_counts_runs_that_lost_a_class() -> None:
    runs = [r | {"test_dice_lip_a": 0.7, "test_dice_lip_b": dice} for r, dice in zip(RUNS, (0.6, 0.0, 0.55, 0.49), strict=True)]
    rows = _bench().per_class(runs, [4], ("supervised", "soft:x=1"))
    assert rows[0] == "| arm | lip_a (mean; per split) | lip_b (mean; per split) | runs with a class < 0.5 |"
    assert rows[2] == "| supervised@4 | 0.700; 0.700 / 0.700 | 0.300; 0.600 / 0.000 | 1 of 2 |"
    assert rows[3].endswith("| 0.520; 0.550 / 0.490 | 1 of 2 |")
