"""Search-space specs (``search_spaces/*.yaml``): parsed and validated here, without Ray or Optuna.

A spec names a base config, fixed overrides, a space of dotted config keys -> distributions, the
objectives, the search (sampler, seed, trials, concurrency), an optional ASHA scheduler, per-trial
resources, and seeds. Grid sweeps (``search.sampler: grid``) take ``variants`` (named override sets, e.g.
ablations and baselines) crossed with ``seeds``; Optuna has no grid, so they run without it.

Every key is checked against the config schema at load time by building the configuration at the
distribution's bounds, so a typo fails before any cluster starts.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from hdc_ray.config import Config, ConfigError, apply_overrides, load_config, packaged_or_path, with_overrides
from hdc_ray.errors import UserError
from hdc_ray.results.columns import METRIC_RE

SPEC_DIR = Path(__file__).resolve().parents[1] / "search_spaces"  # hdc_ray/search_spaces -> ../search_spaces
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice", "fixed", "grid")
SAMPLERS = ("tpe", "nsga2", "random", "gp", "grid")
TOP_KEYS = ("name", "description", "base", "overrides", "space", "variants", "exclude", "seeds", "objectives", "search", "scheduler", "resources", "stopping",
            "target_dice")
# Objectives are judged on the best validation epoch so far; test metrics would leak the test set into selection.
OBJECTIVE_METRICS_OK = ("val_", "label_ratio", "n_labeled", "train_time_s", "images_per_s")


class SpecError(UserError, ValueError):
    """A sweep spec is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Dist:
    kind: str
    args: tuple[Any, ...]

    def bounds(self) -> list[Any]:
        """Values that every trial config must accept (checked at load)."""
        if self.kind in ("uniform", "loguniform", "int"):
            return [self.args[0], self.args[1]]
        return list(self.args)


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"

    @property
    def searcher_metric(self) -> str:
        """What the searcher sees: the best-epoch value of a validation metric, the metric itself otherwise."""
        return f"best_{self.metric}" if self.metric.startswith("val_") else self.metric


@dataclass(frozen=True)
class Scheduler:
    kind: str = "none"  # "asha" | "none"
    metric: str | None = None
    mode: str = "max"
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_t: int | None = None


@dataclass(frozen=True)
class Stopping:
    """``stopping: {until: decided}``: a grid study that adds splits in rounds until its answer is decided.

    Round 1 runs the spec's ``seeds``; each further round adds ``round_seeds`` new ones (the next integers).
    After a round the study is decided by ``hdc_ray.analysis.evidence.decide`` on ``metric``, the metric its report
    answers on (test Dice: the study stops when its answer is decided; no model or setting is chosen by it): every
    arm is paired with ``baseline`` on the split at every budget, and a comparison is decided when the family-wise
    rule claims it (anytime-valid confidence sequences + Holm: at most 5% chance that any claim is wrong over every
    comparison and every round, so looking after each round spends nothing extra) or its adjusted interval is narrower
    than ``width``. The study stops when every comparison is decided and at least ``min_seeds`` splits ran, or at
    ``max_seeds``; a resume with a higher ``max_seeds`` reopens it after either stop. ``RESULTS/NAME/rounds.json``
    records each round, the rule (this metric included) and why it stopped. The defaults come from the operating
    characteristics of ``bench/study_rule.py`` (docs/benchmarks.md, "The study's decision rule").
    """

    until: Literal["decided"] = "decided"
    round_seeds: int = 3
    min_seeds: int = 6
    max_seeds: int = 18  # decides a 4-point gain with split sd 3 in 97% of studies (12: 78%): bench/study_rule.py
    width: float = 0.03  # an adjusted interval narrower than 3 Dice points: any difference left is too small to matter
    baseline: str = "supervised"
    metric: str = "test_dice_fg"  # what decides the study is what its report answers on

    def seeds_of_round(self, first: tuple[int, ...], k: int) -> tuple[int, ...]:
        """Round ``k`` (1-based): the spec's seeds, then ``round_seeds`` more per round, never past ``max_seeds``."""
        if k == 1:
            return first
        start = max(first) + 1 + (k - 2) * self.round_seeds
        room = self.max_seeds - len(first) - (k - 2) * self.round_seeds
        return tuple(range(start, start + max(0, min(self.round_seeds, room))))


@dataclass(frozen=True)
class Resources:
    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    driver_cpus: float = 0.1
    driver_resource: str | None = None  # custom resource a head node advertises so drivers stay there
    # "auto": a one-worker trial trains inside the Tune trial itself (Ray's pattern for single-worker tuning:
    # no Train controller and worker group to start, ~seconds saved per trial); more workers use Ray Train.
    # "train" forces Ray Train (DDP code path) even for one worker.
    launcher: Literal["auto", "train"] = "auto"

    @property
    def in_trial(self) -> bool:
        return self.launcher == "auto" and self.workers == 1

    def per_trial_cpus(self) -> float:
        if self.in_trial:  # the trial process is the worker; a driver resource still pins it to a head
            return self.cpus_per_worker
        return self.driver_cpus + self.workers * self.cpus_per_worker


@dataclass(frozen=True)
class Spec:
    name: str
    base: str
    path: str
    description: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Dist] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # grid only: cells of variants x grid values to leave out, each a partial match such as
    # {variant: hdc, data.label_count: 400} (an SSL method has nothing unlabelled at 100% labels)
    exclude: tuple[dict[str, Any], ...] = ()
    seeds: tuple[int, ...] = (0,)
    objectives: tuple[Objective, ...] = (Objective("val_dice_fg", "max"),)
    sampler: str = "tpe"
    sampler_seed: int = 0
    trials: int = 10
    concurrency: int | None = None  # None: as many as the cluster can place
    scheduler: Scheduler = field(default_factory=Scheduler)
    resources: Resources = field(default_factory=Resources)
    stopping: Stopping | None = None
    # The Dice the study asks "how many labels reach it?" about: the report's budget advisor uses it without a flag
    # (``hdc-ray report --target-dice`` overrides it).
    target_dice: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as loaded, overrides applied

    def resolved_yaml(self) -> str:
        """The spec as it ran (CLI overrides applied, base config path made absolute): saved with results."""
        raw = dict(self.raw) | {"base": _resolve_base(self.base, self.path)}
        return yaml.safe_dump(raw, sort_keys=False)

    @property
    def is_grid(self) -> bool:
        return self.sampler == "grid"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def base_config(self) -> Config:
        return load_config(_resolve_base(self.base, self.path), [f"{k}={_yaml_scalar(v)}" for k, v in self.overrides.items()])

    def trial_config(self, params: dict[str, Any], base: Config | None = None) -> Config:
        """The full configuration of one trial from its sampled/grid parameters (``variant``, ``train.seed``, keys).

        ``base``: :meth:`base_config`, when the caller holds it (it reads the base YAML: ~10 ms a call).
        """
        values = {k: v for k, v in params.items() if k != "variant"}
        if "variant" in params:
            values = {**self.variants[params["variant"]], **values}
        values.setdefault("dist.workers", self.resources.workers)
        values.setdefault("dist.cpus_per_worker", self.resources.cpus_per_worker)
        values.setdefault("dist.use_gpu", self.resources.gpus_per_worker > 0)
        return with_overrides(base or self.base_config(), values)

    def n_trials(self) -> int:
        if not self.is_grid:
            return self.trials * len(self.seeds)
        return len(self.grid_cells()) * len(self.seeds)

    def grid_cells(self) -> list[dict[str, Any]]:
        """Every combination of variant and grid values (seeds apart), minus the ``exclude`` matches."""
        axes: dict[str, list[Any]] = {"variant": list(self.variants)} if self.variants else {}
        axes |= {k: list(d.args) for k, d in self.space.items() if d.kind == "grid"}
        cells = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
        return [c for c in cells if not any(_matches(c, rule) for rule in self.exclude)]

    def describe(self) -> str:
        lines = [f"sweep spec {self.name!r} ({self.path}) is valid", f"  base config: {self.base}", f"  trials: {self.n_trials()}"]
        lines.append(f"  search: {self.sampler} (seed {self.sampler_seed})" + ("" if self.is_grid else f", {self.trials} configs x {len(self.seeds)} seed(s)"))
        lines.append("  objectives: " + ", ".join(f"{o.metric} ({o.mode})" for o in self.objectives))
        lines += [f"  {k}: {d.kind} {list(d.args)}" for k, d in self.space.items()]
        if self.variants:
            lines.append("  variants: " + ", ".join(self.variants))
        if self.exclude:
            lines.append(f"  excluded cells: {', '.join(map(str, self.exclude))}")
        lines.append(f"  seeds: {list(self.seeds)}")
        lines.append(f"  scheduler: {self.scheduler.kind}" + (f" on {self.scheduler.metric} ({self.scheduler.mode}), grace {self.scheduler.grace_period}" if self.scheduler.kind == "asha" else ""))
        r = self.resources
        how = "trained inside the trial" if r.in_trial else f"Ray Train, driver {r.driver_cpus:g} CPU"
        lines.append(f"  per trial: {r.workers} worker(s) x {r.cpus_per_worker:g} CPU" + (f" + {r.gpus_per_worker:g} GPU" if r.gpus_per_worker else "") + f" ({how})")
        lines.append(f"  concurrency: {self.concurrency or 'auto (what the cluster can place)'}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ loading


def shipped_spec_names() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def resolve_spec_path(name_or_path: str | Path) -> Path:
    # A shipped name wins over a local file or folder of that name (./NAME reaches the local one; a note says so).
    chosen = packaged_or_path(name_or_path, SPEC_DIR / f"{name_or_path}.yaml", "spec")
    if chosen is not None and chosen.is_file():
        return chosen
    names = shipped_spec_names()
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    raise SpecError(f"no spec {str(name_or_path)!r}: not a file and not one of {names}" + (f" (did you mean {close[0]!r}?)" if close else ""))


def _first_line(exc: Exception) -> str:
    """YAML errors span several lines (with a caret under the column); one line is enough to find it."""
    return " ".join(str(exc).split())


def is_spec_file(name_or_path: str | Path) -> bool:
    """True when the argument names a sweep spec rather than a training config."""
    try:
        path = resolve_spec_path(name_or_path)
    except SpecError:
        return False
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):  # not YAML at all: load_config/load_spec say so in one line
        return False
    return isinstance(raw, dict) and ("space" in raw or "variants" in raw or "search" in raw)


def load_spec(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Spec:
    path = resolve_spec_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid YAML: {_first_line(exc)}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the top level must be a mapping")
    if overrides:
        raw = _apply_spec_overrides(raw, overrides)
    if isinstance(raw.get("overrides"), dict):  # `--set overrides.data.root=/x` nests; the spec keeps dotted keys
        raw["overrides"] = _dotted(raw["overrides"])
    try:
        spec = _parse(raw, str(path))
        _check_configs(spec)
    except (ConfigError, SpecError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    return spec


def _apply_spec_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set`` on a spec. Inside ``space`` and ``variants`` the keys are themselves dotted config keys, so
    ``space.data.label_count.grid=[2, 4]`` sets the grid of ``data.label_count`` (the last part names the
    distribution) and ``variants.hdc.loss.w_cg=0`` one value of variant ``hdc``; everything else nests as usual."""
    plain, out = [], dict(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        head, _, rest = key.strip().partition(".")
        if not sep or head not in ("space", "variants") or not rest:
            plain.append(item)
            continue
        value = yaml.safe_load(text) if text.strip() else None
        section = dict(out.get(head) or {})
        if head == "space":
            *name, last = rest.split(".")
            if last in DISTRIBUTIONS and name:
                section[".".join(name)] = {last: value}
            else:
                section[rest] = value
        else:
            variant, _, dotted = rest.partition(".")
            section[variant] = {**(section.get(variant) or {}), dotted: value} if dotted else value
        out[head] = section
    return apply_overrides(out, plain) if plain else out


def _parse(raw: dict[str, Any], path: str) -> Spec:
    _known(raw, TOP_KEYS, "")
    search = _section(raw, "search", ("sampler", "seed", "trials", "concurrency", "metric", "mode"))
    if "metric" in search or "mode" in search:
        raise SpecError("search.metric/search.mode: set the metric(s) under `objectives` only (a second place would silently turn a multi-objective study single-objective)")
    sampler = str(search.get("sampler", "tpe"))
    if sampler not in SAMPLERS:
        raise SpecError(f"search.sampler: {sampler!r} is not one of {list(SAMPLERS)}")
    objectives = _objectives(raw.get("objectives"))
    if sampler == "gp" and len(objectives) > 1:
        raise SpecError("search.sampler: gp is single-objective; use nsga2 (or tpe) for several objectives")
    space = {str(k): _dist(str(k), v) for k, v in (raw.get("space") or {}).items()}
    seeds = _seeds(raw.get("seeds", [0]))
    if sampler != "grid" and len(seeds) > 1 and len(objectives) > 1:
        raise SpecError("seeds: several seeds per configuration average one objective; a multi-objective study takes one seed (vary train.seed in the space instead)")
    scheduler = _scheduler(raw.get("scheduler"), objectives)
    if sampler != "grid" and len(seeds) > 1 and scheduler.kind == "asha":
        # Tune runs each seed as its own trial (Repeater), and ASHA ranks trials, not configurations: at a rung a
        # hard split's trial loses to an easy split's and is stopped, and the configuration's mean then mixes
        # stopped and finished scores (Ray's Repeater docs: do not combine it with an early-stopping scheduler).
        raise SpecError(
            "scheduler: ASHA would stop one split's trial for losing to another split's; with several seeds per "
            "configuration use scheduler: none (or one seed, e.g. --set seeds=[0])"
        )
    _check_space_kinds(space, sampler)
    return Spec(
        name=str(raw.get("name") or Path(path).stem),
        base=str(raw.get("base", "synthetic")),
        path=path,
        description=str(raw.get("description", "")),
        overrides=dict(raw.get("overrides") or {}),
        space=space,
        variants=_variants(raw.get("variants"), sampler),
        exclude=_exclude(raw.get("exclude"), sampler),
        seeds=seeds,
        objectives=objectives,
        sampler=sampler,
        sampler_seed=_int(search.get("seed", 0), "search.seed"),
        trials=_positive(search.get("trials", 10), "search.trials"),
        concurrency=None if search.get("concurrency", "auto") == "auto" else _positive(search["concurrency"], "search.concurrency"),
        scheduler=scheduler,
        resources=_resources(raw.get("resources")),
        stopping=_stopping(raw.get("stopping"), sampler, seeds),
        target_dice=_target_dice(raw.get("target_dice")),
        raw=raw,
    )


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _dotted(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


CONFIG_SECTIONS = tuple(f.name for f in fields(Config))  # data, model, noise, loss, train, eval, dist


def _known(section: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if not prefix and key in CONFIG_SECTIONS:  # `hdc-ray sweep --set train.epochs=8`: config values live under overrides
                hint = f" (a config value: write it under overrides, e.g. --set overrides.{key}.<field>=...)"
            raise SpecError(f"unknown key '{prefix}{key}'{hint}; valid keys: {', '.join(allowed)}")


def _section(raw: dict[str, Any], name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    section = raw.get(name) or {}
    if not isinstance(section, dict):
        raise SpecError(f"{name}: expected a mapping")
    _known(section, allowed, f"{name}.")
    return section


def _dist(key: str, value: Any) -> Dist:
    if not isinstance(value, dict) or len(value) != 1:
        raise SpecError(f"space.{key}: write one distribution, e.g. {{uniform: [0.1, 1.0]}}; one of {list(DISTRIBUTIONS)}")
    kind, args = next(iter(value.items()))
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
        raise SpecError(f"space.{key}: unknown distribution {kind!r}" + (f" (did you mean {close[0]!r}?)" if close else "") + f"; one of {list(DISTRIBUTIONS)}")
    if kind == "fixed":
        return Dist(kind, (args,))
    if not isinstance(args, list) or not args:
        raise SpecError(f"space.{key}: {kind} needs a non-empty list")
    if kind in ("uniform", "loguniform", "int"):
        return _range_dist(key, kind, args)
    return Dist(kind, tuple(args))


def _range_dist(key: str, kind: str, args: list[Any]) -> Dist:
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise SpecError(f"space.{key}: {kind} needs [low, high] numbers, got {args}")
    low, high = args
    if low > high:
        raise SpecError(f"space.{key}: low {low} > high {high}")
    if kind == "loguniform" and low <= 0:
        raise SpecError(f"space.{key}: loguniform needs low > 0, got {low}")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise SpecError(f"space.{key}: int bounds must be integers, got {args}")
    return Dist(kind, (int(low), int(high)) if kind == "int" else (float(low), float(high)))


def _check_space_kinds(space: dict[str, Dist], sampler: str) -> None:
    for key, dist in space.items():
        if sampler == "grid" and dist.kind not in ("grid", "fixed", "choice"):
            raise SpecError(f"space.{key}: a grid sweep takes grid/choice/fixed values, not {dist.kind}")
        if sampler != "grid" and dist.kind == "grid":
            raise SpecError(f"space.{key}: `grid` needs search.sampler: grid (Optuna has no grid; use choice)")


def _objectives(raw: Any) -> tuple[Objective, ...]:
    if raw is None:
        return (Objective("val_dice_fg", "max"),)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise SpecError("objectives: give at least one {metric, mode}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"metric", "mode"}:
            raise SpecError(f"objectives[{i}]: expected {{metric: ..., mode: max|min}}, got {item!r}")
        metric, mode = str(item["metric"]), str(item["mode"])
        if mode not in ("max", "min"):
            raise SpecError(f"objectives[{i}].mode: {mode!r} is not max or min")
        if not metric.startswith(OBJECTIVE_METRICS_OK):
            raise SpecError(f"objectives[{i}].metric: {metric!r} cannot be optimised; use a validation metric (val_...) or one of label_ratio, n_labeled, train_time_s (never test_...)")
        out.append(Objective(metric, mode))
    if len({o.metric for o in out}) != len(out):
        raise SpecError("objectives: the same metric is listed twice")
    return tuple(out)


def _variants(raw: Any, sampler: str) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if sampler != "grid":
        raise SpecError("variants: named variants need search.sampler: grid")
    if not isinstance(raw, dict) or not raw:
        raise SpecError("variants: expected a non-empty mapping name -> {dotted.key: value}")
    return {str(k): dict(v or {}) for k, v in raw.items()}


def _exclude(raw: Any, sampler: str) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if sampler != "grid":
        raise SpecError("exclude: leaving grid cells out needs search.sampler: grid")
    if not isinstance(raw, list) or not all(isinstance(r, dict) and r for r in raw):
        raise SpecError("exclude: expected a list of partial cells, e.g. [{variant: hdc, data.label_count: 400}]")
    return tuple(dict(r) for r in raw)


def _matches(cell: dict[str, Any], rule: dict[str, Any]) -> bool:
    return all(k in cell and cell[k] == v for k, v in rule.items())


def _check_exclude(spec: Spec) -> None:
    """Every rule names grid axes and values that exist, and leaves something to run."""
    axes = {"variant": list(spec.variants)} | {k: list(d.args) for k, d in spec.space.items() if d.kind == "grid"}
    for i, rule in enumerate(spec.exclude):
        for key, value in rule.items():
            if key not in axes:
                raise SpecError(f"exclude[{i}].{key}: not a grid axis; axes are {sorted(axes)}")
            if value not in axes[key]:
                raise SpecError(f"exclude[{i}].{key}: {value!r} is not one of the grid values {axes[key]} (after changing the grid, "
                                "set the exclusions to match, e.g. --set 'exclude=[]' when no cell needs leaving out)")
    if not spec.grid_cells():
        raise SpecError("exclude: every grid cell is excluded; nothing would run")


def _seeds(raw: Any) -> tuple[int, ...]:
    seeds = raw if isinstance(raw, list) else list(range(_positive(raw, "seeds")))
    if not seeds or len(set(seeds)) != len(seeds):
        raise SpecError(f"seeds: expected a list of distinct integers or a count, got {raw!r}")
    return tuple(_int(s, "seeds") for s in seeds)


def _scheduler(raw: Any, objectives: tuple[Objective, ...]) -> Scheduler:
    if raw in (None, "none"):
        return Scheduler()
    if not isinstance(raw, dict):
        raise SpecError("scheduler: expected a mapping with type: asha, or none")
    _known(raw, ("type", "metric", "mode", "grace_period", "reduction_factor", "max_t"), "scheduler.")
    kind = str(raw.get("type", "asha"))
    if kind not in ("asha", "none"):
        raise SpecError(f"scheduler.type: {kind!r} is not asha or none (HyperBand restarts trials; ASHA does not)")
    first = objectives[0]
    metric = str(raw.get("metric", first.metric))
    if not metric.startswith("val_"):
        raise SpecError(f"scheduler.metric: {metric!r}: ASHA needs a per-epoch validation metric (val_...)")
    return Scheduler(
        kind=kind,
        metric=metric,
        mode=str(raw.get("mode", first.mode if metric == first.metric else "max")),
        grace_period=_positive(raw.get("grace_period", 1), "scheduler.grace_period"),
        reduction_factor=float(raw.get("reduction_factor", 2.0)),
        max_t=None if raw.get("max_t") is None else _positive(raw["max_t"], "scheduler.max_t"),
    )


def _stopping(raw: Any, sampler: str, seeds: tuple[int, ...]) -> Stopping | None:
    if raw in (None, "none"):
        return None
    if not isinstance(raw, dict):
        raise SpecError("stopping: expected a mapping, e.g. {until: decided, max_seeds: 12}, or none")
    _known(raw, ("until", "round_seeds", "min_seeds", "max_seeds", "width", "baseline", "metric"), "stopping.")
    if raw.get("until", "decided") != "decided":
        raise SpecError(f"stopping.until: {raw['until']!r}: the one rule is 'decided' (add splits until every budget's paired interval is decided)")
    if sampler != "grid":
        raise SpecError("stopping: rounds of splits need a grid study (search.sampler: grid); Optuna sweeps stop at search.trials")
    width = raw.get("width", Stopping.width)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < 2:
        raise SpecError(f"stopping.width: expected a Dice width between 0 and 2 (e.g. 0.03), got {width!r}")
    metric = str(raw.get("metric", Stopping.metric))
    if not METRIC_RE.match(metric) or not metric.startswith(("test_", "val_")):
        raise SpecError(f"stopping.metric: {metric!r} is not a metric column such as test_dice_fg (what the report answers on) or val_dice_fg")
    rule = Stopping(round_seeds=_positive(raw.get("round_seeds", Stopping.round_seeds), "stopping.round_seeds"),
                    min_seeds=_positive(raw.get("min_seeds", Stopping.min_seeds), "stopping.min_seeds"),
                    max_seeds=_positive(raw.get("max_seeds", Stopping.max_seeds), "stopping.max_seeds"), width=float(width),
                    baseline=str(raw.get("baseline", "supervised")), metric=metric)  # fmt: skip
    if rule.max_seeds < len(seeds):
        raise SpecError(f"stopping.max_seeds: {rule.max_seeds} is fewer than the {len(seeds)} seeds of the first round")
    if rule.min_seeds > rule.max_seeds:
        raise SpecError(f"stopping.min_seeds: {rule.min_seeds} is more than max_seeds {rule.max_seeds}")
    return rule


def _target_dice(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw < 1:
        raise SpecError(f"target_dice: expected a Dice between 0 and 1 (e.g. 0.8), or null; got {raw!r}")
    return float(raw)


def _resources(raw: Any) -> Resources:
    raw = raw or {}
    _known(raw, ("workers", "cpus_per_worker", "gpus_per_worker", "driver_cpus", "driver_resource", "launcher"), "resources.")
    launcher = raw.get("launcher", "auto")
    if launcher not in ("auto", "train"):
        raise SpecError(f"resources.launcher: {launcher!r} is not one of 'auto' (one worker trains inside the trial) or 'train' (always Ray Train)")
    res = Resources(
        workers=_positive(raw.get("workers", 1), "resources.workers"),
        cpus_per_worker=float(raw.get("cpus_per_worker", 1.0)),
        gpus_per_worker=float(raw.get("gpus_per_worker", 0.0)),
        driver_cpus=float(raw.get("driver_cpus", 0.1)),
        driver_resource=raw.get("driver_resource"),
        launcher=launcher,
    )
    if res.driver_cpus <= 0:
        raise SpecError("resources.driver_cpus: must be > 0 (Tune rejects 0 CPUs; 0.1 is plenty for a driver)")
    if res.cpus_per_worker <= 0:
        raise SpecError("resources.cpus_per_worker: must be > 0")
    return res


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{key}: expected an integer, got {value!r}")
    return value


def _positive(value: Any, key: str) -> int:
    if _int(value, key) < 1:
        raise SpecError(f"{key}: must be >= 1, got {value}")
    return int(value)


def _resolve_base(base: str, spec_path: str) -> str:
    candidate = Path(spec_path).parent / base
    return str(candidate.resolve()) if candidate.suffix in (".yaml", ".yml") and candidate.is_file() else base


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _check_configs(spec: Spec) -> None:
    """Build the base config, every variant, and the space at its bounds: typos fail now, not mid-sweep."""
    spec.base_config()
    _check_exclude(spec)
    for name in spec.variants or {"": {}}:
        params: dict[str, Any] = {"variant": name} if name else {}
        spec.trial_config(params | {"train.seed": spec.seeds[0]})
        for key, dist in spec.space.items():
            for value in dist.bounds():
                try:
                    spec.trial_config(params | {key: value})
                except ConfigError as exc:
                    raise SpecError(f"space.{key} = {value!r}: {exc}") from None


def trial_params(spec: Spec, params: dict[str, Any]) -> dict[str, Any]:
    """Tune's trial config -> the spec's parameters; the Repeater's ``__trial_index__`` picks the seed."""
    out = {k: v for k, v in params.items() if not k.startswith("__")}
    out = {**out.pop("cell", {}), **out}  # a grid with exclusions: one grid axis of whole cells
    if "__trial_index__" in params and len(spec.seeds) > 1:
        out["train.seed"] = spec.seeds[int(params["__trial_index__"])]
    return out
