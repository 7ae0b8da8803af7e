"""The segmentation tasks and their classes, shared by the synthetic generator, the real readers and results."""

from __future__ import annotations

# Index = label value in the masks; 0 is always background.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "cervix": ("background", "anterior_lip", "posterior_lip"),  # FUGC 2025 and the synthetic cervix
    "psfh": ("background", "pubic_symphysis", "fetal_head"),  # PSFH / PSFHS and the synthetic PSFH-like task
}

# Which task a real dataset's reader produces (``data.source``); the synthetic source uses ``data.task``.
SOURCE_TASK = {"fugc": "cervix", "psfh": "psfh"}


def task_of(source: str, task: str) -> str:
    return SOURCE_TASK.get(source, task)
