"""The report end to end on a fake results folder, and clear messages for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from analysis_fakes import POOL
from matplotlib.image import imread

from hdc_ray.analysis import build_report, read_results
from hdc_ray.analysis.report import PLOT_FILES
from hdc_ray.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_BOOT = 100  # resamples in these tests (the report's default is 1000): intervals here are only checked for shape


def _run(results: Path | str, out: Path | None = None, sweep: list[str] | None = None, target: float | None = None) -> int:
    argv = ["report", str(results), *(["--out", str(out)] if out else []), *[a for s in sweep or [] for a in ("--sweep", s)]]
    return main([*argv, *(["--target-dice", str(target)] if target is not None else [])])


@pytest.fixture(scope="module")
def report_dir(fake_results: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("report")
    report = build_report(read_results(fake_results), out, target_dice=0.85, n_boot=N_BOOT)  # the CLI path: test_terminal_summary
    return out, 0 if report.markdown.is_file() else 1


def test_report_end_to_end(report_dir: tuple[Path, int]) -> None:
    out, rc = report_dir
    assert rc == 0
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for name in PLOT_FILES.values():
        png = out / name
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, name
        pixels = imread(png)
        assert pixels.ndim == 3 and pixels.std() > 0.01, f"{name} looks blank"
        assert f"]({name})" in md and f'src="{name}"' in page
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md))
    assert linked == set(PLOT_FILES.values())


def test_report_answers_the_three_questions(report_dir: tuple[Path, int]) -> None:
    md = (report_dir[0] / "report.md").read_text()
    for heading in (
        "## Sweeps",
        "## 1. What label budget",
        "## 2. Which loss terms",
        "## 3. Which settings are Pareto",
        "## Parameter importance",
        "## Learning curves",
        "## Notes",
    ):
        assert heading in md
    # budget and ablation both ran hdc and supervised at 10% on splits 0-2: the Answer refuses to pair such cells, naming them
    assert "No answer from these results: 12 finished trials share an (arm, budget, split): e.g. hdc at 10 images, split 0: trials ablation/hdc_0, budget/hdc_0.1_0" in md
    assert "## Budget advisor" in md and "hdc needs ~" in md and "to reach test Dice (foreground mean) 0.85" in md
    assert "2 trial(s) still running and 1 failed" in md
    assert "hdc-no_cg @10%: test_dice_fg -0.030 vs hdc" not in md or "this part matters" in md
    assert re.search(r"no_pc @10%: test_dice_fg -0\.06\d vs hdc .*worse than hdc; this part matters", md)
    assert re.search(r"no_mi @10%: .*no clear difference", md)
    assert "Pareto-optimal" in md and "failed: budget/hdc_0.1_3: RuntimeError" in md


def test_terminal_summary(fake_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(fake_results, tmp_path / "r", sweep=["budget"]) == 0
    out = capsys.readouterr().out
    assert "sweeps budget: 36 finished, 1 failed, 2 running" in out
    assert re.search(r"hdc\s+0\.720 ± 0\.025 \(3\)\s+0\.800 ± 0\.025 \(3\)", out)
    assert "mean over splits ± 95% CI half-width (splits)" in out
    assert out.splitlines()[1].startswith("  hdc vs supervised: not established with 3 split(s) at any measured budget")  # the answer comes first
    assert "Error control: at most a 5% chance that any claim here is wrong, over the 8 comparisons" in out and "report.md" in out
    assert "note: ablation skipped: no ablation variants" in out  # budget sweep alone has none
    assert not (tmp_path / "r" / "ablation.png").exists()
    assert "Not available: no ablation variants" in (tmp_path / "r" / "report.md").read_text()


def test_default_out_is_results_report(results_root: Path, sweep_writer, trial_factory) -> None:
    sweep_writer(results_root, "s", [trial_factory("s", f"t{i}", "hdc", 0.1, i, 0.8) for i in range(2)])
    assert _run(results_root) == 0 and (results_root / "report" / "report.md").is_file()
    assert read_results(results_root).sweeps == ("s",)  # the report folder is not a sweep


def test_one_seed_and_validation_only(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    rows = [trial_factory("s", f"{m}{r}", m, r, 0, d) for m, d in (("hdc", 0.8), ("supervised", 0.7)) for r in (0.1, 0.5)]
    for row in rows:
        for key in [k for k in row if k.startswith("test_")]:
            row[key] = None
    sweep_writer(results_root, "s", rows)
    report = build_report(read_results(results_root), tmp_path / "out")
    md = report.markdown.read_text()
    assert "1 seed — no CI" in md and "`val_dice_fg`, the model-selection split" in md
    assert set(report.plots) == {"label_budget", "pareto", "importance"}
    assert "learning_curves" in report.skipped and "ablation" in report.skipped
    assert "**hdc vs supervised: not established with 1 split(s) at any measured budget" in md


def test_mixed_tasks_are_kept_apart(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    for task in ("cervix", "psfh"):
        rows = [
            trial_factory(task, f"{m}{s}", m, r, s, d + 0.01 * s)
            for m, d in (("hdc", 0.8), ("supervised", 0.7))
            for r in (0.1, 0.5)
            for s in range(2)
        ]
        for row in rows:
            row["task"] = task
        sweep_writer(results_root, task, rows)
    md = build_report(read_results(results_root), tmp_path / "out").markdown.read_text()
    assert "| cervix: hdc |" in md and "| psfh: supervised |" in md
    assert "- **cervix: hdc vs supervised: not established with 2 split(s)" in md and "- **psfh: hdc vs supervised:" in md
    assert "over the 4 comparisons" in md  # one family across both tasks


def _answer(md: str) -> str:
    """The report's Answer section: everything before the intro paragraph."""
    return md.split("## Answer", 1)[1].split("Results: ", 1)[0]


def test_answer_comes_first_with_the_curve(fake_results: Path, tmp_path: Path) -> None:
    report = build_report(read_results(fake_results, ["budget"]), tmp_path / "r", n_boot=N_BOOT)
    md = report.markdown.read_text()
    assert md.index("## Answer") < md.index("## Sweeps")
    assert "<li><strong>hdc vs supervised: not established with 3 split(s) at any measured budget" in report.html.read_text()
    answer = _answer(md)
    assert ("@5 images: 0.720 vs 0.600, +12.0 points (adjusted unbounded with 3 splits at level 0.6%; raw 95% +12.0 to +12.0; ahead on 3 of 3 "
            "splits)") in answer  # 8 comparisons: Holm's first level is 5%/8  # fmt: skip
    assert "3 split(s): fewer than the 6 a conclusion needs" in answer and "fewer labels" not in answer
    assert "| hdc | 5 images | 3 | 0.720 | 0.600 | +12.0 | unbounded with 3 splits at level 0.6% | +12.0 to +12.0 | 3 of 3 | +12.0 / +12.0 / +12.0 | not established | – |" in md
    assert "![label-budget curve](label_budget.png)" in answer


def test_answer_without_supervised_arm_says_so(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    rows = [trial_factory("s", f"h{r}{s}", "hdc", r, s, 0.7 + r / 10) for r in (0.05, 0.1) for s in range(2)]
    sweep_writer(results_root, "s", rows)
    answer = _answer(build_report(read_results(results_root), tmp_path / "out").markdown.read_text())
    assert "No answer for no supervised arm in these results (hdc)" in answer


def test_target_beyond_the_data_is_flagged(fake_results: Path, tmp_path: Path) -> None:
    report = build_report(read_results(fake_results, ["budget"]), tmp_path / "r", target_dice=0.89, n_boot=N_BOOT)
    answer = _answer(report.markdown.read_text())
    assert "EXTRAPOLATED beyond the measured budget 50, the largest" in answer
    assert "supervised: labels needed for test Dice (foreground mean) 0.89 not identified" in answer  # its fit sits at a=1
    assert report.plots["labels_needed"].name == "labels_needed.png"


def test_best_is_chosen_on_validation_not_test(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    """val-best is trial `valbest` (val 0.90, test 0.70); test-best is `testbest` (val 0.80, test 0.86)."""
    rows = [trial_factory("s", f"t{s}", "hdc", 0.1, s, 0.75) for s in range(2)]
    for tid, val, test in (("valbest", 0.90, 0.70), ("testbest", 0.80, 0.86)):
        row = trial_factory("s", tid, "hdc", 0.1, 5 if tid == "valbest" else 6, test)
        row["val_dice_fg"] = val
        rows.append(row)
    sweep_writer(results_root, "s", rows)
    report = build_report(read_results(results_root), tmp_path / "out")
    md = report.markdown.read_text()
    assert "| s | cervix | hdc | 4 | 0 | 0 | 0 | valbest | 0.900 | 0.700 |" in md
    assert "s: best trial by val_dice_fg `valbest`" in md and "best trial by val_dice_fg `testbest`" not in md
    assert "chosen on the validation metric `val_dice_fg` and reported on `test_dice_fg`" in md
    assert re.search(r"hdc\s+0\.765 ± ", report.summary)  # the mean test score, with its interval


def test_a_sweep_repeating_each_configuration_over_seeds_picks_the_best_seed_mean(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    """Config `lucky` has the single best trial (val 0.90 on seed 0) but the worse mean (0.90, 0.60); config
    `steady` (0.80, 0.80) is the better configuration: the report must not pick settings by one split."""
    rows = []
    for name, w_cg, vals in (("lucky", 0.5, (0.90, 0.60)), ("steady", 0.1, (0.80, 0.80))):
        for seed, val in enumerate(vals):
            row = trial_factory("s", f"{name}{seed}", "hdc", 0.1, seed, val - 0.05, weights=(1.0, w_cg, 0.1))
            rows.append(row | {"val_dice_fg": val, "cfg.data.label_count": None if name == "lucky" else 4})  # unset: NaN
    sweep_writer(results_root, "s", rows)
    md = build_report(read_results(results_root), tmp_path / "out").markdown.read_text()
    assert "| steady0 (+1 seeds, mean) | 0.800 | 0.750 |" in md
    assert "best configuration by mean val_dice_fg over 2 seeds (trials steady0, steady1;" in md and "(0.800 / 0.800)" in md
    assert "`loss.w_cg=0.100`" in md and "lucky0" not in md.split("## 1.")[0]
    pareto = md.split("## 3.")[1].split("## ")[0]  # the front is over configurations too, not over splits
    assert "of 2 configurations (each the mean over its seeds)" in pareto and "| steady0 (+1 seeds, mean) |" in pareto and "lucky" not in pareto


def test_seed_mean_best_groups_configurations_with_an_unset_setting() -> None:
    """pandas 3 keeps NaN through astype(str): the all-label arm (label_count unset) once crashed the report."""
    from hdc_ray.analysis.render.sections import best_of

    done = pd.DataFrame({"trial_id": list("abcd"), "seed": [0, 1, 0, 1], "val_dice_fg": [0.9, 0.5, 0.8, 0.8],
                         "test_dice_fg": [0.8, 0.4, 0.7, 0.7], "cfg.data.label_count": [float("nan")] * 2 + [4.0] * 2,
                         "cfg.train.method": pd.array(["supervised"] * 2 + ["hdc"] * 2, dtype="str")})  # fmt: skip
    best = best_of(done, "val_dice_fg")
    assert best is not None and best["trial_ids"] == "c, d" and best["test_dice_fg"] == pytest.approx(0.7)


def test_bad_target_dice(fake_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(fake_results), "--out", str(tmp_path), "--target-dice", "85"]) == 2
    assert "error: --target-dice 85.0 must lie between 0 and 1" in capsys.readouterr().err


def _expect_error(capsys: pytest.CaptureFixture[str], results: Path, pattern: str, **kw) -> None:
    assert _run(results, **kw) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(pattern, err), err
    assert "Traceback" not in err


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_error(capsys, tmp_path / "nope", "does not exist")


def test_no_trials_parquet(results_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (results_root / "s").mkdir()
    _expect_error(capsys, results_root, "no sweep results")


def test_zero_finished_trials(results_root: Path, sweep_writer, trial_factory, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [trial_factory("s", "a", "hdc", 0.1, 0, None, status="running"), trial_factory("s", "b", "hdc", 0.1, 1, None, status="failed")]
    sweep_writer(results_root, "s", rows)
    _expect_error(capsys, results_root, r"no finished trials yet \((1 running, 1 failed|1 failed, 1 running)\)")


def test_metric_missing(results_root: Path, sweep_writer, trial_factory, capsys: pytest.CaptureFixture[str]) -> None:
    row = trial_factory("s", "a", "hdc", 0.1, 0, 0.8)
    for key in [k for k in row if "_dice_" in k]:
        row[key] = None
    sweep_writer(results_root, "s", [row])
    _expect_error(capsys, results_root, r"no finished trial has test_dice_fg or val_dice_fg; metrics present: .*test_hd95_fg")


def test_schema_versions_differ(results_root: Path, sweep_writer, trial_factory, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_writer(results_root, "a", [trial_factory("a", "t", "hdc", 0.1, 0, 0.8)], version=1)
    sweep_writer(results_root, "b", [trial_factory("b", "t", "hdc", 0.1, 0, 0.8)], version=2)
    _expect_error(capsys, results_root, r"different results schema versions \(a: v1, b: v2\).*--sweep")


def test_unknown_sweep(fake_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_error(capsys, fake_results, "sweep\\(s\\) x not found", sweep=["x"], out=tmp_path)


def test_the_answer_says_in_words_when_the_method_saves_no_labels(tmp_path: Path, sweep_writer, trial_factory) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for seed in range(6):
        for n, sup, hdc in ((4, 0.60, 0.58), (8, 0.66, 0.64), (16, 0.72, 0.70), (POOL, 0.81, None)):
            rows.append(trial_factory("s", f"s{n}-{seed}", "supervised", n / POOL, seed, sup + 0.01 * seed))
            if hdc is not None:
                rows.append(trial_factory("s", f"h{n}-{seed}", "hdc", n / POOL, seed, hdc + 0.01 * seed + 0.001 * (seed == 1)))
    sweep_writer(tmp_path, "s", rows)
    report = build_report(read_results(tmp_path), tmp_path / "r", n_boot=N_BOOT)
    answer = report.markdown.read_text().split("## Answer", 1)[1].split("![", 1)[0]
    assert "**hdc vs supervised: behind at 4, 8 and 16 labelled images.**" in answer
    assert "fewer labels" not in answer  # no saving is claimed where the method trails on every split


def test_a_label_budget_study_trades_dice_against_labelled_images_not_seconds(fake_results: Path, tmp_path: Path) -> None:
    md = build_report(read_results(fake_results, ["budget"]), tmp_path / "r", n_boot=N_BOOT).markdown.read_text()
    pareto = md.split("## 3.")[1].split("## ")[0]
    assert "Objectives: val_dice_fg (max), n_labeled (min)." in pareto and "train_time_s" not in pareto
    # the cheapest budget of the best arm is on the front: hdc at 5 labelled images beats everything else at 5
    assert re.search(r"\| budget \| hdc_0\.05_0 \(\+2 seeds, mean\) \| hdc \| 5 images \|", pareto)


def test_a_sweep_at_one_budget_keeps_training_time_as_its_cost(results_root: Path, sweep_writer, trial_factory, tmp_path: Path) -> None:
    rows = [trial_factory("s", f"t{i}", "hdc", 0.1, i, 0.7 + 0.01 * i, weights=(1.0, 0.1 * (i + 1), 0.1)) for i in range(3)]
    sweep_writer(results_root, "s", rows)
    md = build_report(read_results(results_root), tmp_path / "out").markdown.read_text()
    assert "Objectives: val_dice_fg (max), train_time_s (min)." in md.split("## 3.")[1]
