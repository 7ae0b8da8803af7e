"""The package's boundaries: the Ray boundary, and the layers no import may run up.

The Ray boundary: the training math and the results/analysis layers import neither Ray nor Optuna.

Each pure module is imported in ONE fresh interpreter, in order; after every import the interpreter says
whether ``ray`` or ``optuna`` has appeared in ``sys.modules``, so a leak names the module that caused it.
Optuna's importance evaluators are imported lazily inside ``analysis.importance`` functions (issue 5 asks
for them), which is why importing that module must not load Optuna either.

The layers (``LAYERS``, lowest first, justified in the docstring of the layer test): every module's
hdc_ray imports are read with ``ast`` (top level, inside functions, under ``TYPE_CHECKING``) and each must
point strictly down, to a lower layer, or stay inside its own package; no module takes another package's
underscore names.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import hdc_ray

PURE_PACKAGES = ("errors", "console", "config", "outputs", "data", "noise", "model", "losses", "metrics", "train", "inference", "results", "analysis")
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


def _run_probe(modules: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH names this checkout: a relative one (PYTHONPATH=.) would resolve against cwd and import
    # whichever hdc_ray the interpreter has installed.
    env = {**os.environ, "PYTHONPATH": str(Path(hdc_ray.__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_pure_modules_are_found() -> None:
    names = pure_modules()
    for expected in ("hdc_ray.train.loop", "hdc_ray.results.writer", "hdc_ray.analysis.report", "hdc_ray.losses.correlation", "hdc_ray.inference.predict"):
        assert expected in names
    assert not any(n.startswith(("hdc_ray.tune", "hdc_ray.distributed")) for n in names)


@pytest.mark.slow  # imports every pure module (and Ray) in a fresh interpreter
def test_no_pure_module_imports_ray_or_optuna(tmp_path: Path) -> None:
    done = _run_probe(pure_modules(), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, "a pure module pulled in Ray/Optuna (module: what appeared)"


@pytest.mark.slow  # imports every pure module (and Ray) in a fresh interpreter
def test_the_probe_does_detect_a_leak(tmp_path: Path) -> None:
    """Self-check: the probe reports a module that does import Ray."""
    done = _run_probe(["hdc_ray.config", "hdc_ray.tune.sweep"], tmp_path)
    leaks = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(leaks) == ["hdc_ray.tune.sweep"] and "ray" in leaks["hdc_ray.tune.sweep"]


# ---------------------------------------------------------------------------------------------- layers

# Lowest first; why this order: the docstring of test_no_module_imports_one_from_a_higher_or_the_same_layer.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"hdc_ray", "errors", "console"}),
    frozenset({"config", "outputs"}),
    frozenset({"data"}),
    frozenset({"noise", "model", "losses", "metrics"}),
    frozenset({"results"}),
    frozenset({"train", "analysis"}),
    frozenset({"inference"}),
    frozenset({"distributed"}),
    frozenset({"tune"}),
    frozenset({"cli"}),
)
# Imports allowed to run up the layers: (importing module, imported module) -> why. Keep it empty if you can.
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    names: tuple[str, ...]  # what ``from target import ...`` takes ("" for ``import target``)
    line: int


def package_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root / 'hdc_ray'``."""
    out = {}
    for path in sorted((root / "hdc_ray").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def scan_imports(root: Path) -> list[Import]:
    """Every hdc_ray import of every module, wherever it is (top level, functions, TYPE_CHECKING blocks)."""
    modules = package_modules(root)
    found = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [Import(module, a.name, ("",), node.lineno) for a in node.names if a.name.split(".")[0] == "hdc_ray"]
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(node, package)
                if target.split(".")[0] != "hdc_ray":
                    continue
                names = tuple(a.name for a in node.names)
                # ``from hdc_ray import tune`` imports the module hdc_ray.tune, not the root
                subs = [n for n in names if f"{target}.{n}" in modules]
                found += [Import(module, f"{target}.{n}", ("",), node.lineno) for n in subs]
                if len(subs) < len(names):
                    found.append(Import(module, target, tuple(n for n in names if n not in subs), node.lineno))
    return found


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def unit_of(module: str) -> str:
    """The package (or top-level module) a dotted name belongs to: ``hdc_ray.train.card`` -> ``train``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hdc_ray"


def level_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def upward_imports(imports: list[Import]) -> list[str]:
    """``module -> target (line n): unit (layer i) imports unit (layer j)`` for every import not strictly downward."""
    bad = []
    for imp in imports:
        mine, theirs = unit_of(imp.module), unit_of(imp.target)
        if mine == theirs or (imp.module, imp.target) in UPWARD_EXCEPTIONS:
            continue
        if level_of(theirs) >= level_of(mine):
            bad.append(f"{imp.module} -> {imp.target} (line {imp.line}): {mine} (layer {level_of(mine)}) imports {theirs} (layer {level_of(theirs)})")
    return bad


def private_imports(imports: list[Import]) -> list[str]:
    """Imports of another package's underscore names or modules (make them public or move them)."""
    bad = []
    for imp in imports:
        if unit_of(imp.module) == unit_of(imp.target):
            continue
        private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
        private += [p for p in imp.target.split(".") if p.startswith("_") and not p.startswith("__")]
        if private:
            bad.append(f"{imp.module} -> {imp.target} (line {imp.line}): private {', '.join(private)}")
    return bad


REPO_ROOT = Path(hdc_ray.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_imports() -> list[Import]:
    return scan_imports(REPO_ROOT)


def test_every_package_has_exactly_one_layer() -> None:
    units = {unit_of(m) for m in package_modules(REPO_ROOT)}
    named = [u for layer in LAYERS for u in layer]
    assert len(named) == len(set(named)), "a package is named in two layers"
    assert units - set(named) == set(), "a package or top-level module has no layer: add it to LAYERS (and say why in the layer test's docstring)"
    assert set(named) - units == set(), "LAYERS names a package that does not exist"


def test_no_module_imports_one_from_a_higher_or_the_same_layer(real_imports: list[Import]) -> None:
    """The layers, lowest first; a module may import its own package and any package of a LOWER layer.

    Packages that share a layer are independent (neither imports the other). The order is the code's own:
    - ``hdc_ray`` (the root: ``__version__``), ``errors`` (the ``UserError`` base) and ``console`` (the ``-v``
      switch) import nothing of hdc_ray, so every layer may use them;
    - ``config`` (typed dataclasses) and ``outputs`` (folder checks) only need ``errors``;
    - ``data`` builds datasets from a ``DataConfig``; ``noise``, ``model``, ``losses`` and ``metrics`` are the
      math, each on its own; ``results`` (Parquet columns, rows, writer) names the metrics and the tasks;
    - ``train`` (torch: the loop, checkpoints and the model card they carry) and ``analysis`` (pandas over the
      Parquet results) both stand on ``results`` and never on each other: analysis stays torch-free, and
      training never reads result tables;
    - ``inference`` applies a checkpoint (``train``) to new images and picks a sweep's best trial (``analysis``);
    - ``distributed`` runs training and inference on Ray Train / Ray Data; ``tune`` runs sweeps whose trials
      are Train runs (``distributed``) and whose rounds ask ``analysis``; ``cli`` parses and calls them all.
    """
    bad = upward_imports(real_imports)
    assert bad == [], "imports that run up the layers (move the code down, or add a commented UPWARD_EXCEPTIONS entry):\n" + "\n".join(bad)


def test_no_module_imports_another_packages_private_names(real_imports: list[Import]) -> None:
    bad = private_imports(real_imports)
    assert bad == [], "\n".join(bad)


def test_the_scan_sees_lazy_imports_inside_functions(real_imports: list[Import]) -> None:
    """The CLI imports every command's module inside its function: the scan must see those."""
    targets = {(i.module, i.target) for i in real_imports}
    assert ("hdc_ray.cli", "hdc_ray.tune.sweep") in targets and ("hdc_ray.distributed.predict", "hdc_ray.console") in targets


def test_the_layer_checks_catch_a_synthetic_violation(tmp_path: Path) -> None:
    """Self-check on a fake tree: an upward import at the top, one inside a function, a relative one, a
    ``from hdc_ray import <package>``, a peer import, and a private name, each named with its module."""
    files = {
        "hdc_ray/__init__.py": "",
        "hdc_ray/config.py": "",
        "hdc_ray/train/__init__.py": "",
        "hdc_ray/train/checkpoint.py": "from hdc_ray.inference.card import card_of\n",
        "hdc_ray/train/loop.py": "def fit():\n    from ..tune import sweep\n    from hdc_ray import analysis\n",
        "hdc_ray/train/ok.py": "from hdc_ray.config import X\nfrom . import loop\nfrom hdc_ray import __version__\n",
        "hdc_ray/analysis/__init__.py": "",
        "hdc_ray/tune/__init__.py": "",
        "hdc_ray/tune/sweep.py": "",
        "hdc_ray/inference/__init__.py": "",
        "hdc_ray/inference/card.py": "from hdc_ray.data.readers import _grey, IMAGE_SUFFIXES\n",
        "hdc_ray/data/__init__.py": "",
        "hdc_ray/data/readers.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    imports = scan_imports(tmp_path)
    assert sorted(upward_imports(imports)) == [
        "hdc_ray.train.checkpoint -> hdc_ray.inference.card (line 1): train (layer 5) imports inference (layer 6)",
        "hdc_ray.train.loop -> hdc_ray.analysis (line 3): train (layer 5) imports analysis (layer 5)",
        "hdc_ray.train.loop -> hdc_ray.tune.sweep (line 2): train (layer 5) imports tune (layer 8)",
    ]
    assert private_imports(imports) == ["hdc_ray.inference.card -> hdc_ray.data.readers (line 1): private _grey"]
