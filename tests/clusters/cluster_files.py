"""Shared helpers for the tests of ``clusters/``: find the files, pull commands out of them, load schemas.

Commands are looked for everywhere a user could copy one from: every string value of the YAML files, the
code lines of the shell script, the code (fenced blocks and inline spans) of the Markdown files, and in
comments the `code spans` and the example lines (comment text indented by two or more spaces, the way the
usage blocks at the top of the files are written). A ``hdc-ray`` token is a command when it stands where a
shell command starts (line start, after ``--``, ``&&``, ``;``, ``|``, ``exec``, ``#``, an ``X=y``
assignment); quoted strings (``ray exec cluster.yaml "hdc-ray sweep ..."``) are searched too. A bare
``hdc-ray`` (a name: the service account, the label) is not a command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
SEARCH_SPACES = REPO / "search_spaces"
# CI copies ray-project/kuberay ray-operator/config/crd/bases/*.yaml here; HDC_RAY_KUBERAY_CRDS overrides the folder.
KUBERAY_CRDS = Path(os.environ.get("HDC_RAY_KUBERAY_CRDS", REPO.parent / "shared" / "kuberay-crds"))

RAY_VERSION = "2.60.0"
TORCH_VERSION = "2.13.0"
HEAD_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311"
GPU_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311-gpu"
# The one string users replace (clusters/README.md): where the package is installed from.
PACKAGE_PIP_SPEC = "hdc-ray[ray] @ git+https://github.com/YOUR_ORG/hdc-ray.git@v0.1.0"

SUBCOMMANDS = ("train", "validate", "sweep", "report", "export", "list")
SEPARATORS = {"&&", "||", ";", "|", ")", "(", "&"}


def cluster_files() -> list[Path]:
    """Every file shipped under clusters/ (what users copy from)."""
    return sorted(p for p in CLUSTERS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def launcher_configs() -> list[Path]:
    """Ray cluster-launcher configs: the YAML files at the top of clusters/."""
    return sorted(CLUSTERS.glob("*.yaml"))


def kuberay_manifests() -> list[Path]:
    return sorted((CLUSTERS / "kuberay").glob("*.yaml"))


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def iter_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from iter_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from iter_strings(v)


def ray_schema() -> dict[str, Any]:
    """The cluster-launcher JSON schema shipped inside the installed Ray wheel."""
    return json.loads((files("ray") / "autoscaler" / "ray-schema.json").read_text())


# ------------------------------------------------------------------------------------------- text sources
def _join_continuations(text: str) -> list[str]:
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        lines.append(buf + raw)
        buf = ""
    if buf:
        lines.append(buf)
    return lines


def _comment_text(line: str) -> str | None:
    """The code in a comment line: its `code spans`, or the whole text if indented as an example; else ''."""
    stripped = line.strip()
    if not stripped.startswith("#"):
        return None
    text = stripped.lstrip("#")
    spans = re.findall(r"`([^`]+)`", text)
    if spans:
        return " ; ".join(spans)
    return text if text.startswith("  ") else ""


def markdown_code(text: str) -> list[str]:
    """Lines of fenced code blocks plus inline code spans (``like this``) of a Markdown text."""
    out: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
        else:
            out += re.findall(r"`([^`\n]+)`", line)
    return _join_continuations("\n".join(out))


def text_sources(path: Path) -> list[str]:
    """The logical lines of a file in which commands may appear (see the module docstring)."""
    text = path.read_text()
    if path.suffix == ".md":
        return markdown_code(text)
    if path.suffix in (".yaml", ".yml"):
        values = [line for doc in load_docs(path) for s in iter_strings(doc) for line in _join_continuations(s)]
        comments = [c for line in text.splitlines() if (c := _comment_text(line)) is not None]
        return values + comments
    # shell scripts and anything else: every line, comments included (usage lines live there)
    return [c if (c := _comment_text(line)) is not None else line for line in _join_continuations(text)]


def _tokens(line: str) -> list[str]:
    line = line.replace("`", " ")
    try:
        return shlex.split(line, posix=True)
    except ValueError:  # an apostrophe in prose
        return [t.strip("'\"") for t in line.split()]


@dataclass(frozen=True)
class Command:
    source: str  # file (relative) and the line it came from, for messages
    argv: tuple[str, ...]  # what follows `hdc-ray` (or `python -m hdc_ray.cli`)

    def __str__(self) -> str:
        return f"{self.source}  ->  hdc-ray {' '.join(self.argv)}"


COMMAND_STARTERS = SEPARATORS | {"--", "exec", "time", "nohup", "then", "do", "#", "$"}


def _commands_in_tokens(toks: list[str]) -> Iterator[tuple[str, ...]]:
    for i, tok in enumerate(toks):
        if " " in tok:  # a quoted command line, e.g. ray exec cluster.yaml "hdc-ray sweep ..."
            yield from _commands_in_tokens(_tokens(tok))
            continue
        at_start = i == 0 or toks[i - 1] in COMMAND_STARTERS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", toks[i - 1]) is not None
        if not at_start:
            continue
        if tok == "hdc-ray":
            start = i + 1
        elif tok.endswith("python") and toks[i + 1 : i + 3] == ["-m", "hdc_ray.cli"]:
            start = i + 3
        else:
            continue
        argv: list[str] = []
        for t in toks[start:]:
            if t in SEPARATORS:
                break
            if t.endswith(";"):
                argv.append(t[:-1])
                break
            argv.append(t)
        if argv:
            yield tuple(argv)


def commands_in(path: Path) -> list[Command]:
    rel = path.relative_to(REPO)
    return [Command(f"{rel}: {line.strip()[:100]}", argv) for line in text_sources(path) for argv in _commands_in_tokens(_tokens(line))]


def all_commands() -> list[Command]:
    return [c for p in cluster_files() for c in commands_in(p)]


def is_placeholder(value: str) -> bool:
    return any(ch in value for ch in "$<{") or value.isupper()


def spec_file_for(value: str) -> Path | None:
    """The repository spec file a SPEC argument refers to, or None when it is not a search-space spec.

    Bare names (``smoke``) and paths ending in ``search_spaces/NAME.yaml`` (relative, or absolute inside a
    container such as ``/home/ray/hdc-ray/search_spaces/NAME.yaml``) map to ``search_spaces/NAME.yaml`` here.
    """
    if "search_spaces/" in value:
        return SEARCH_SPACES / value.rsplit("search_spaces/", 1)[1]
    if "/" not in value and not value.endswith((".yaml", ".yml")):
        return SEARCH_SPACES / f"{value}.yaml"
    return None
