"""Bad input and broken files through the real CLI, as subprocesses (issue 12): a non-zero exit, one
``error:`` line naming the input, no traceback, nothing half-written. Every run has ``cwd=tmp_path``."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FAST = ["--set", "train.epochs=1", "--set", "train.iters_per_epoch=1", "--no-progress"]


def _cli(tmp_path: Path, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HDC_RAY_LOG_DIR": str(tmp_path / "logs")}
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "hdc_ray.cli", *args]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _one_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_missing_data_root_leaves_no_run_folder(tmp_path: Path) -> None:
    line = _one_error(_cli(tmp_path, "train", "tiny", "--set", "data.source=psfh", "--set", "data.root=nowhere", "--out", "out", *FAST))
    assert "nowhere: PSFH root folder does not exist" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_ssl_without_unlabelled_images(tmp_path: Path) -> None:
    line = _one_error(_cli(tmp_path, "train", "tiny", "--set", "data.label_ratio=1.0", "--set", "train.method=hdc", "--out", "out", *FAST))
    assert "leaves no unlabelled training images" in line and "train.method=supervised" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", [["train", "tiny", "--out"], ["sweep", "smoke", "--results"], ["report", "results", "--out"]])
def test_output_under_a_regular_file(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "file").write_text("x")
    if command[0] == "report":  # a report needs results to get as far as writing
        pytest.importorskip("pandas")
        _fake_results(tmp_path / "results")
    done = _cli(tmp_path, *command, "file/out", *(FAST if command[0] == "train" else []))
    line = _one_error(done)
    assert "is a file, not a folder" in line
    assert "Ray" not in done.stdout  # a sweep refuses before its cluster starts


def _fake_results(folder: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "analysis"))
    from analysis_fakes import write_fake_results  # type: ignore[import-not-found]

    write_fake_results(folder)


def _trained_run(tmp_path: Path) -> Path:
    done = _cli(tmp_path, "train", "tiny", "--out", "run", *FAST)
    assert done.returncode == 0, done.stderr
    return next((tmp_path / "run" / "checkpoints").glob("epoch_*.pt"))


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_corrupt_and_foreign_checkpoints_on_resume(tmp_path: Path) -> None:
    latest = _trained_run(tmp_path)
    latest.write_bytes(np.random.default_rng(1).bytes(256))
    line = _one_error(_cli(tmp_path, "train", "tiny", "--out", "run", "--resume", *FAST))
    assert "run/checkpoints/epoch_0001.pt: corrupt or not a checkpoint" in line and "weights_only" not in line
    torch.save({"weights": torch.zeros(3)}, latest)
    line = _one_error(_cli(tmp_path, "train", "tiny", "--out", "run", "--resume", *FAST))
    assert "not an hdc-ray checkpoint" in line


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_resume_with_a_changed_config(tmp_path: Path) -> None:
    _trained_run(tmp_path)
    line = _one_error(_cli(tmp_path, "train", "tiny", "--out", "run", "--resume", "--set", "train.lr=0.5", *FAST))
    assert "different configuration (train.lr: 0.003 -> 0.5)" in line


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_spec_that_is_not_yaml(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("space: [1\n  b: :\n")
    for command in (["validate", "bad.yaml"], ["sweep", "bad.yaml"]):
        assert "bad.yaml: not valid YAML" in _one_error(_cli(tmp_path, *command))


@pytest.mark.slow  # a CLI subprocess that imports torch (or trains): seconds each
def test_accept_spec_change_needs_resume(tmp_path: Path) -> None:
    assert "only applies with --resume" in _one_error(_cli(tmp_path, "sweep", "smoke", "--accept-spec-change"))


def test_an_unexpected_exception_is_one_line_naming_a_log_with_the_traceback(tmp_path: Path) -> None:
    code = (
        "import sys, hdc_ray.cli as cli\n"
        "def boom(args):\n    raise RuntimeError('something internal\\nbroke')\n"
        "cli.COMMANDS['list'] = boom\nsys.exit(cli.main(['list']))\n"
    )
    line = _one_error(_cli(tmp_path, code=code), code=1)
    assert "unexpected RuntimeError (a bug in hdc-ray" in line and "something internal broke" in line
    log = Path(line.rsplit("traceback in ", 1)[1])
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: something internal" in text and "hdc-ray list" in text


def _error_classes() -> list[tuple[str, str]]:
    """(module, class) of every exception type hdc_ray defines, found by reading the source (a new one
    cannot be missed); private ones (``_Skipped``: control flow inside a module) are not the user's."""
    found = []
    for path in sorted((REPO / "hdc_ray").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and not node.name.startswith("_"):
                found.append((module, node.name))
    return found


USER_ERRORS = _error_classes()


def test_the_error_classes_are_found() -> None:
    names = {name for _, name in USER_ERRORS}
    assert {"ConfigError", "DataError", "ClusterError", "SpecError", "CheckpointError", "InputError", "PairingError"} <= names
    assert len(names) >= 12


@pytest.mark.parametrize(("module", "name"), USER_ERRORS, ids=[name for _, name in USER_ERRORS])
def test_every_user_error_is_a_user_error_printed_as_one_line(module: str, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import hdc_ray.cli as cli
    from hdc_ray.errors import UserError

    error = getattr(importlib.import_module(module), name)
    assert issubclass(error, UserError), f"{module}.{name} must derive from hdc_ray.errors.UserError"

    def fail(args: object) -> int:
        raise error("bad.yaml: the thing is wrong; do this instead")

    monkeypatch.setitem(cli.COMMANDS, "list", fail)
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err == "error: bad.yaml: the thing is wrong; do this instead\n"


def test_an_error_that_is_not_a_user_error_is_still_a_bug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The base class is what the CLI catches: a plain ValueError (a bug) still gets the crash log."""
    import hdc_ray.cli as cli

    def fail(args: object) -> int:
        raise ValueError("internal")

    monkeypatch.setenv("HDC_RAY_LOG_DIR", str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "list", fail)
    assert cli.main(["list"]) == 1
    assert "unexpected ValueError (a bug in hdc-ray" in capsys.readouterr().err
