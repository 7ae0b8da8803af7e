"""The Ray boundary: the training math and the results/analysis layers import neither Ray nor Optuna.

Each pure module is imported in ONE fresh interpreter, in order; after every import the interpreter says
whether ``ray`` or ``optuna`` has appeared in ``sys.modules``, so a leak names the module that caused it.
Optuna's importance evaluators are imported lazily inside ``analysis.importance`` functions (issue 5 asks
for them), which is why importing that module must not load Optuna either.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import hdc_ray

PURE_PACKAGES = ("config", "data", "noise", "model", "losses", "metrics", "train", "inference", "results", "analysis")
FORBIDDEN = ("ray", "optuna")

PROBE = """
import importlib, json, sys
leaks = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    found = [m for m in FORBIDDEN if m in sys.modules]
    if found:
        leaks[name] = found
        break
print(json.dumps(leaks))
""".replace("FORBIDDEN", repr(FORBIDDEN))


def pure_modules() -> list[str]:
    root = Path(hdc_ray.__file__).parent
    names = []
    for package in PURE_PACKAGES:
        names.append(f"hdc_ray.{package}")
        if (root / package).is_dir():
            names += [m.name for m in pkgutil.walk_packages([str(root / package)], prefix=f"hdc_ray.{package}.")]
    return names


def test_the_pure_modules_are_found() -> None:
    names = pure_modules()
    for expected in ("hdc_ray.train.loop", "hdc_ray.results.writer", "hdc_ray.analysis.report", "hdc_ray.losses.correlation", "hdc_ray.inference.predict"):
        assert expected in names
    assert not any(n.startswith(("hdc_ray.tune", "hdc_ray.distributed")) for n in names)


def test_no_pure_module_imports_ray_or_optuna(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(pure_modules())], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, "a pure module pulled in Ray/Optuna (module: what appeared)"


def test_the_probe_does_detect_a_leak(tmp_path: Path) -> None:
    """Self-check: the probe reports a module that does import Ray."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(["hdc_ray.config", "hdc_ray.tune.sweep"])], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    leaks = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(leaks) == ["hdc_ray.tune.sweep"] and "ray" in leaks["hdc_ray.tune.sweep"]
