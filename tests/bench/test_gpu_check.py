"""bench/gpu_check.py on a CPU: the dry run takes every code path of the GPU check, without Ray or Optuna."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
METHODS = ("supervised", "mean_teacher", "cps", "hdc")
# The GPU machine has no Ray and no Optuna: make importing either fail, then run the script as __main__.
LAUNCH = (
    "import runpy, sys; sys.modules['ray'] = None; sys.modules['optuna'] = None; "
    "script = sys.argv.pop(1); sys.argv[0] = script; runpy.run_path(script, run_name='__main__')"
)


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HDC_RAY_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(REPO / "bench" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path / "out" / "gpu.md"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    doc = json.loads((tmp_path / "out" / "gpu.json").read_text())
    return proc, doc


@pytest.mark.slow
def test_dry_run_reports_every_case(tmp_path: Path) -> None:
    proc, doc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    timed = {(t["config"], t["precision"], t["method"]) for t in doc["timings"]}
    assert timed == {(c, p, m) for c in ("synthetic", "paper") for p in ("fp32", "bf16") for m in METHODS}
    assert all(t["ms_step"] > 0 and t["img_s"] > 0 and t["vs_hdc"] > 0 for t in doc["timings"])
    checks = {c["check"]: c for c in doc["checks"]}
    expected = [
        "process group (gloo, world size 1)", "gloo collectives", "DDP vs unwrapped losses, hdc (gloo)",
        "dist.pin_memory batch == unpinned batch", "fp16 + GradScaler vs fp32 losses, synthetic hdc", "run_local bf16 on cpu, resumed vs straight", "total",
        "predict on cpu (batch 2)",
        *(f"DDP fit {m} (gloo)" for m in METHODS),
        *(f"bf16 vs fp32 losses, {c} {m}" for c in ("synthetic", "paper") for m in METHODS),
    ]
    assert sorted(checks) == sorted(expected)
    assert all(c["status"] == "ok" for c in doc["checks"]), doc["checks"]
    assert "max rel diff" in checks["bf16 vs fp32 losses, paper hdc"]["detail"]
    markdown = (tmp_path / "out" / "gpu.md").read_text()
    assert "| paper | bf16 | hdc |" in markdown and "| bf16 vs fp32 losses, synthetic cps | ok |" in markdown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]  # nothing written anywhere else


def test_budget_guard_skips_and_says_so(tmp_path: Path) -> None:
    proc, doc = _run(tmp_path, "--budget-s", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = {c["check"]: c["status"] for c in doc["checks"]}
    assert doc["timings"] == []
    assert statuses["DDP section"] == "SKIP" and statuses["train synthetic"] == "SKIP" and statuses["train paper"] == "SKIP"
    assert "case(s) skipped for time" in next(c["detail"] for c in doc["checks"] if c["check"] == "total")
    assert "SKIP" in proc.stdout
