"""What a checkpoint is: the model card that travels with the weights, so ``predict`` needs no config.

A card says which task the network segments (its class names, index = label value), the square input
size it was trained at, how images are normalised before the network sees them, and the architecture
to rebuild. ``checkpoint.snapshot`` and ``run_local`` write it under the ``"card"`` key of every
checkpoint (``best.pt``, ``checkpoints/epoch_*.pt``, Ray Train ``checkpoint_*/state.pt``, in-trial Tune
checkpoints), as plain values (``torch.load(..., weights_only=True)`` reads it).

It lives in ``train/`` because training writes it; ``hdc_ray.inference`` reads it (training never imports
inference: tests/test_boundaries.py).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hdc_ray.config import Config, ConfigError, ModelConfig, config_from_dict
from hdc_ray.data.tasks import CLASS_NAMES, task_of

CARD_VERSION = 1
# How the readers turn a file into the network's input (hdc_ray/data/readers.py): one grey channel
# (identical channels kept, real colour to ITU-R 601 luma, alpha dropped), 8-bit / 255, 16-bit / 65535,
# anything else min-max per image, then a bilinear resize to input_size x input_size.
NORMALISATION = "grey [0,1]: uint8/255, uint16/65535, other types min-max per image; bilinear resize to input_size"


@dataclass(frozen=True)
class ModelCard:
    task: str  # class vocabulary: "cervix" (FUGC, synthetic cervix) or "psfh"
    class_names: tuple[str, ...]  # index = label value; 0 is the background
    input_size: int  # the network sees input_size x input_size images (data.image_size)
    model: ModelConfig  # the architecture to rebuild
    method: str  # how it was trained (train.method); informative only
    scored: str  # which network the weights are: "teacher" or "student" (what validation selected)
    normalisation: str = NORMALISATION
    in_channels: int = 1

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only: safe for ``torch.load(weights_only=True)``."""
        return {
            "card_version": CARD_VERSION, "task": self.task, "class_names": list(self.class_names), "input_size": self.input_size,
            "model": dataclasses.asdict(self.model), "method": self.method, "scored": self.scored,
            "normalisation": self.normalisation, "in_channels": self.in_channels,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelCard:
        try:
            return cls(
                task=str(raw["task"]), class_names=tuple(str(c) for c in raw["class_names"]), input_size=int(raw["input_size"]),
                model=ModelConfig(**dict(raw["model"])), method=str(raw.get("method", "unknown")), scored=str(raw.get("scored", "unknown")),
                normalisation=str(raw.get("normalisation", NORMALISATION)), in_channels=int(raw.get("in_channels", 1)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed model card ({type(exc).__name__}: {exc})") from None

    def describe(self) -> str:
        m = self.model
        return (f"task {self.task} ({', '.join(self.class_names[1:])}), input {self.input_size}x{self.input_size}, "
                f"{m.backbone} width {m.base_width} depth {m.depth}, {self.method} ({self.scored})")  # fmt: skip


def card_of(cfg: Config) -> ModelCard:
    """The card of the network a run with ``cfg`` validates and tests (``train.methods.scored_net``)."""
    task = task_of(cfg.data.source, cfg.data.task)
    scored = "teacher" if cfg.train.method == "supervised_ema" else cfg.train.eval_model
    if cfg.train.method in ("supervised", "cps"):
        scored = "student"  # no teacher: the trained network itself
    return ModelCard(task, CLASS_NAMES[task], cfg.data.image_size, cfg.model, cfg.train.method, scored)


def config_from_flat(flat: Mapping[str, Any]) -> tuple[Config, list[str]]:
    """Rebuild a Config from ``config.flatten`` output (what checkpoints and ``metrics.json`` carry).

    Returns the config and the keys that this version does not know (dropped: an older hdc-ray wrote them).
    """
    known = _field_types()
    tree: dict[str, Any] = {}
    dropped = []
    for key, value in flat.items():
        if key not in known:
            dropped.append(key)
            continue
        if typing.get_origin(known[key]) is tuple and isinstance(value, str):
            value = [v for v in value.split(",") if v]  # flatten joined lists with commas
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return config_from_dict(tree, source="the checkpoint's config"), dropped
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            section = typing.get_type_hints(typing.cast(type, hint))
            out |= {f"{f.name}.{g.name}": section[g.name] for g in dataclasses.fields(typing.cast(type, hint))}
        else:
            out[f.name] = hint
    return out
