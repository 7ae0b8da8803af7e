"""Every ``hdc-ray`` command the README, a spec header or a report prints is one that works.

Each is parsed by the real CLI parser and, where it names a config or a spec, resolved exactly as the command
would (``load_config`` / ``load_spec`` with its ``--set`` values): a documented command that fails for a user
(like the old ``--set space.data.label_count.grid=...``) fails here first. Nothing is trained.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from hdc_ray.cli import _parser
from hdc_ray.config import load_config
from hdc_ray.tune.spec import is_spec_file, load_spec

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """``hdc-ray ...`` lines of the README's bash blocks (backslash continuations joined, comments dropped)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#\s", line, maxsplit=1)[0].strip()
            if line.startswith("hdc-ray "):
                commands.append(line)
    return commands


def spec_header_commands() -> list[tuple[str, str]]:
    """(spec file, command) for each ``label:   hdc-ray ...`` line in a spec's header comments."""
    found = []
    for path in sorted((ROOT / "search_spaces").glob("*.yaml")):
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            if match := re.search(r":\s+(hdc-ray\s.+)$", line):
                found.append((path.name, match.group(1).strip()))
    return found


def check_command(command: str) -> None:
    """Parse ``command`` as the CLI does and resolve the config or spec it names."""
    argv = shlex.split(command)
    assert argv[0] == "hdc-ray", command
    args = _parser().parse_args(argv[1:])
    target = {"sweep": "spec", "train": "config", "validate": "path"}.get(args.command)
    if target is None:
        return  # report / export / compact / list / predict ...: their inputs are the user's folders
    name = getattr(args, target)
    if args.command == "sweep" or (args.command == "validate" and is_spec_file(name)):
        load_spec(name, [*args.overrides, *([f"search.trials={args.trials}"] if getattr(args, "trials", None) else [])])
    else:
        load_config(name, args.overrides)


def test_the_readme_documents_commands() -> None:
    commands = readme_commands()
    assert len(commands) >= 15 and any(c.startswith("hdc-ray sweep study") for c in commands)


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_resolves(command: str) -> None:
    check_command(command)


@pytest.mark.parametrize(("spec", "command"), spec_header_commands())
def test_every_spec_header_command_resolves(spec: str, command: str) -> None:
    check_command(command)


def test_the_study_header_documents_its_variations() -> None:
    commands = [c for spec, c in spec_header_commands() if spec == "study.yaml"]
    assert len(commands) >= 5 and any("space.data.label_count.grid=" in c for c in commands)


def test_the_commands_a_report_prints_resolve() -> None:
    """The Answer's next-round commands (more splits, larger budgets, longer runs, a study's next rounds) run as printed."""
    from hdc_ray.analysis.answer import SweepHint, build_answer

    rows = []
    for n, base in ((4, 0.6), (8, 0.7), (16, 0.8)):
        for seed in range(3):
            for method, gain in (("supervised", 0.0), ("hdc", 0.01 * (seed - 1))):
                rows.append({"trial_id": f"{method}{n}{seed}", "status": "completed", "method": method, "label_ratio": n / 400,
                             "n_labeled": n, "seed": seed, "test_dice_fg": base + gain + 0.01 * seed, "epochs_done": 8, "best_epoch": 8,
                             "cfg.train.epochs": 8, "cfg.train.iters_per_epoch": 40})  # fmt: skip
    trials = pd.DataFrame(rows)
    hint = SweepHint("study", "demo", "results", 8)
    answer = build_answer(trials, "test_dice_fg", hint=hint, target=0.95, n_boot=20)
    rounds = build_answer(trials, "test_dice_fg", hint=SweepHint("study", "demo", "results", 8, max_seeds=3, seeds_run=3))
    printed = [c for line in (*answer.next_steps, *answer.advice, *rounds.next_steps) for c in re.findall(r"`(hdc-ray [^`]+)`", line)]
    assert len(printed) >= 5  # more splits + the report of both, larger budgets, longer runs, more rounds
    assert any("--resume" in c and "stopping.max_seeds=6" in c for c in printed)
    for command in printed:
        check_command(command)
