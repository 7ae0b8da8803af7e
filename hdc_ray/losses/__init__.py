"""HDC losses: pure functions of tensors, one module per loss.

- ``supervised_loss``: pixel cross-entropy for both student decoders on labelled images.
- ``consistency_loss``: teacher hard pseudo-labels, confidence-masked, on the student's strong view.
- ``masked_dice_loss``: FixMatch / UniMatch's medical form: Dice against confident self pseudo-labels.
- ``correlation_guidance_loss``: L_CG, hierarchical teacher / student-main feature alignment.
- ``mutual_information_loss``: L_MI between the student's main and noisy branches.
- ``sigmoid_rampup``, ``weighted_total``: the schedule that combines them.
"""

from __future__ import annotations

from hdc_ray.losses.consistency import consistency_loss, masked_dice_loss
from hdc_ray.losses.correlation import correlation_guidance_loss
from hdc_ray.losses.mutual_information import mutual_information_loss
from hdc_ray.losses.schedule import sigmoid_rampup, weighted_total
from hdc_ray.losses.supervised import supervised_loss

__all__ = [
    "consistency_loss",
    "correlation_guidance_loss",
    "masked_dice_loss",
    "mutual_information_loss",
    "sigmoid_rampup",
    "supervised_loss",
    "weighted_total",
]
