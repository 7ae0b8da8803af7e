"""Every `hdc-ray ...` command in clusters/ (YAML values and comments, the script, the Markdown code) is one the
CLI accepts, and every spec it names exists and passes `hdc-ray validate` with the same `--set` overrides.

How commands are found is described in ``cluster_files``. Arguments are checked with the CLI's own argparse
parser when ``hdc_ray/cli.py`` exists (the flags in the files must exist, with valid values), and against the
documented contract otherwise. Running `hdc-ray validate` needs the CLI: that part alone skips without it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_files import REPO, SEARCH_SPACES, SUBCOMMANDS, Command, all_commands, is_placeholder, spec_file_for

CLI = REPO / "hdc_ray" / "cli.py"
COMMANDS = all_commands()


def _contract_parser() -> argparse.ArgumentParser:
    """The CLI contract, for when hdc_ray/cli.py is not there yet."""
    parser = argparse.ArgumentParser(prog="hdc-ray", exit_on_error=False)
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("sweep", exit_on_error=False)
    p.add_argument("spec")
    for flag in ("--name", "--address", "--results"):
        p.add_argument(flag)
    p.add_argument("--trials", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--set", action="append")
    p = sub.add_parser("validate", exit_on_error=False)
    p.add_argument("path")
    p.add_argument("--set", action="append")
    p = sub.add_parser("train", exit_on_error=False)
    p.add_argument("config")
    p.add_argument("--workers", type=int)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--address")
    p.add_argument("--set", action="append")
    p = sub.add_parser("report", exit_on_error=False)
    p.add_argument("results")
    p.add_argument("--sweep", action="append")
    p.add_argument("--out")
    p = sub.add_parser("export", exit_on_error=False)
    p.add_argument("experiment")
    sub.add_parser("list", exit_on_error=False)
    return parser


def _parser() -> argparse.ArgumentParser:
    if CLI.is_file():
        from hdc_ray.cli import _parser as cli_parser

        return cli_parser()
    return _contract_parser()


def _parse(argv: tuple[str, ...]) -> argparse.Namespace:
    """Parse like the CLI would; argparse errors (SystemExit) become AssertionError with the message."""
    parser = _parser()
    try:
        return parser.parse_args(list(argv))
    except (SystemExit, argparse.ArgumentError) as exc:
        raise AssertionError(f"the CLI rejects: hdc-ray {' '.join(argv)} ({exc})") from None


def _overrides(ns: argparse.Namespace) -> list[str]:
    return list(getattr(ns, "overrides", None) or getattr(ns, "set", None) or [])


def _spec_argument(ns: argparse.Namespace) -> str | None:
    if ns.command == "sweep":
        return str(ns.spec)
    if ns.command == "validate":
        return str(ns.path)
    return None


def test_commands_are_found() -> None:
    """The parser sees the commands users will copy: at least the cloud, Kubernetes, local and README ones."""
    sources = {c.source.split(":")[0] for c in COMMANDS if len(c.argv) > 1}
    for expected in (
        "clusters/aws-gpu.yaml",
        "clusters/gcp-gpu.yaml",
        "clusters/kuberay/raycluster.yaml",
        "clusters/kuberay/rayjob-sweep.yaml",
        "clusters/local.md",
        "clusters/local-cluster.sh",
        "clusters/README.md",
    ):
        assert expected in sources, f"no hdc-ray command found in {expected}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c)[:160])
def test_subcommand_and_flags_exist(command: Command) -> None:
    assert command.argv[0] in SUBCOMMANDS, f"{command}: not an hdc-ray subcommand"
    if len(command.argv) > 1:  # a bare `hdc-ray sweep` in prose names the subcommand only
        _parse(command.argv)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c)[:160])
def test_specs_exist(command: Command) -> None:
    if len(command.argv) == 1:
        return
    ns = _parse(command.argv)
    value = _spec_argument(ns)
    if value is None or is_placeholder(value) or is_placeholder(Path(value).stem):
        return
    spec = spec_file_for(value)
    if ns.command == "validate" and spec is not None and not spec.is_file():
        spec = None  # `validate tiny`: a config, not a spec
    if ns.command == "sweep":
        assert spec is not None, f"{command}: sweep needs a spec name or a path under search_spaces/"
    if spec is not None:
        assert spec.is_file(), f"{command}: {spec.relative_to(REPO)} does not exist"


def _validate_calls() -> list[tuple[str, tuple[str, ...]]]:
    calls: set[tuple[str, tuple[str, ...]]] = set()
    for command in COMMANDS:
        if len(command.argv) == 1:
            continue
        try:
            ns = _parse(command.argv)
        except AssertionError:
            continue  # reported by test_subcommand_and_flags_exist
        value = _spec_argument(ns)
        if value is None or is_placeholder(value) or is_placeholder(Path(value).stem):
            continue
        spec = spec_file_for(value)
        if spec is None or not spec.is_file():
            continue
        overrides = _overrides(ns)
        if getattr(ns, "trials", None) is not None:
            overrides.append(f"search.trials={ns.trials}")  # what `sweep --trials` does
        calls.add((str(spec.relative_to(REPO)), tuple(overrides)))
    return sorted(calls)


def test_every_spec_named_is_covered() -> None:
    if not any(SEARCH_SPACES.glob("*.yaml")):
        pytest.skip("search_spaces/ has no specs yet")
    assert _validate_calls(), "no command names a spec"


@pytest.mark.skipif(not CLI.is_file(), reason="hdc_ray/cli.py does not exist yet: `hdc-ray validate` cannot run")
@pytest.mark.parametrize(("spec", "overrides"), _validate_calls(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_hdc_ray_validate_accepts(spec: str, overrides: tuple[str, ...], tmp_path: Path) -> None:
    path = REPO / spec
    argv = [sys.executable, "-m", "hdc_ray.cli", "validate", str(path) if path.exists() else spec]
    for override in overrides:
        argv += ["--set", override]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"hdc-ray validate {spec} {' '.join(overrides)}\n{proc.stdout}\n{proc.stderr}"


def test_the_harness_finds_and_rejects_bad_commands() -> None:
    """Self-check: a command hidden in a quoted string is found, and a wrong subcommand/flag is rejected."""
    from cluster_files import _commands_in_tokens, _tokens

    (argv,) = list(_commands_in_tokens(_tokens('ray exec c.yaml --tmux "hdc-ray tune smoke --address auto"')))
    assert argv == ("tune", "smoke", "--address", "auto") and argv[0] not in SUBCOMMANDS
    assert not list(_commands_in_tokens(_tokens("kubectl create serviceaccount hdc-ray")))
    with pytest.raises(AssertionError):
        _parse(("sweep", "smoke", "--workers", "2"))
    assert spec_file_for("/home/ray/hdc-ray/search_spaces/smoke.yaml") == SEARCH_SPACES / "smoke.yaml"
