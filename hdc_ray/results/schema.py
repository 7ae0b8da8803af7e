"""The results schema (``docs/results-schema.md``): fixed column types, so a failed trial (all metrics
null) or a trial of another method never changes a column's type, and readers can rely on them."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import pyarrow as pa

from hdc_ray.config import Config
from hdc_ray.data.tasks import CLASS_NAMES, task_of
from hdc_ray.results.columns import SCHEMA_VERSION

METRICS = ("dice", "jaccard", "hd95", "asd")
LOSS_COLUMNS = ("train_loss", "train_loss_sup", "train_loss_pc", "train_loss_cg", "train_loss_mi", "train_loss_cps", "train_confident_fraction", "train_pc_threshold")
TIMESTAMP = pa.timestamp("us", tz="UTC")

_HEAD = (
    ("schema_version", pa.int32()), ("sweep", pa.string()), ("trial_id", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("method", pa.string()), ("variant", pa.string()), ("label_ratio", pa.float64()),
    ("n_labeled", pa.int64()), ("seed", pa.int64()), ("split_hash", pa.string()), ("task", pa.string()),
    ("class_names", pa.string()), ("distance_unit", pa.string()),
)  # fmt: skip
_TAIL = (
    ("train_time_s", pa.float64()), ("images_per_s", pa.float64()), ("checkpoint_path", pa.string()), ("node", pa.string()),
    ("started_at", TIMESTAMP), ("finished_at", TIMESTAMP), ("hdc_ray_version", pa.string()), ("git_commit", pa.string()),
)  # fmt: skip


def foreground_classes(cfg: Config) -> tuple[str, ...]:
    return CLASS_NAMES[task_of(cfg.data.source, cfg.data.task)][1:]


def metric_columns(cfg: Config, split: str) -> list[str]:
    return [f"{split}_{m}_{c}" for m in METRICS for c in ("fg", *foreground_classes(cfg))]


def trials_schema(cfg: Config) -> pa.Schema:
    """One row per trial; ``cfg`` (the sweep's base config) fixes the config columns and class names."""
    fields = [pa.field(n, t) for n, t in _HEAD]
    fields += [pa.field(n, t) for n, t in config_types(cfg).items()]
    fields += [pa.field("epochs_done", pa.int64()), pa.field("best_epoch", pa.int64())]
    fields += [pa.field(c, pa.float64()) for split in ("val", "test") for c in metric_columns(cfg, split)]
    fields += [pa.field(n, t) for n, t in _TAIL]
    return pa.schema(fields, metadata={"hdc_ray_schema_version": str(SCHEMA_VERSION)})


def history_schema(cfg: Config) -> pa.Schema:
    """One row per trial per reported epoch."""
    fields = [pa.field("schema_version", pa.int32()), pa.field("sweep", pa.string()), pa.field("trial_id", pa.string()), pa.field("epoch", pa.int64())]
    fields += [pa.field(c, pa.float64()) for c in (*LOSS_COLUMNS, *metric_columns(cfg, "val"), "lr", "ramp", "epoch_time_s", "images_per_s")]
    return pa.schema(fields, metadata={"hdc_ray_schema_version": str(SCHEMA_VERSION)})


def config_types(cfg: Config) -> dict[str, pa.DataType]:
    """``cfg.<section>.<key>`` -> Arrow type, from the config dataclasses' annotations (not from values)."""
    out: dict[str, pa.DataType] = {}
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            out[f"cfg.{section.name}"] = _arrow_type(typing.get_type_hints(type(cfg))[section.name])
            continue
        hints = typing.get_type_hints(type(value))
        for f in dataclasses.fields(value):
            out[f"cfg.{section.name}.{f.name}"] = _arrow_type(hints[f.name])
    return out


def _arrow_type(hint: Any) -> pa.DataType:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _arrow_type(inner[0]) if len(inner) == 1 else pa.string()
    if origin is Literal:
        return _arrow_type(type(get_args(hint)[0]))
    return {bool: pa.bool_(), int: pa.int64(), float: pa.float64()}.get(hint, pa.string())  # str, tuples: comma-joined


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> a table of exactly ``schema`` (missing keys null, extra keys dropped, values cast to the column type)."""
    columns = {}
    for f in schema:
        cast = _caster(f.type)  # chosen once per column: this runs on every flush of a sweep
        columns[f.name] = [None if (v := r.get(f.name)) is None else cast(v) for r in rows]
    return pa.Table.from_pydict(columns, schema=schema)


def _caster(kind: pa.DataType) -> Callable[[Any], Any]:
    """The cast of one non-null value to ``kind``; NaN becomes null outside float columns."""
    if pa.types.is_floating(kind):
        return float
    if pa.types.is_integer(kind):
        return lambda v: None if _is_nan(v) else int(v)
    if pa.types.is_boolean(kind):
        return lambda v: None if _is_nan(v) else bool(v)
    if pa.types.is_string(kind):
        return lambda v: None if _is_nan(v) else ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
    return lambda v: v


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
