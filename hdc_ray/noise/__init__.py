"""The three noise levels of HDC: weak and strong image views, structured feature perturbations."""

from hdc_ray.noise.features import FeaturePerturbation, channel_dropout, feature_dropout, feature_noise
from hdc_ray.noise.mix import cutmix, cutmix_box, jitter_view
from hdc_ray.noise.seeds import derive_seed, generators, image_seeds
from hdc_ray.noise.views import random_affine, strong_view, warp, warp_mask, weak_view

__all__ = [
    "FeaturePerturbation",
    "channel_dropout",
    "cutmix",
    "cutmix_box",
    "derive_seed",
    "feature_dropout",
    "feature_noise",
    "generators",
    "image_seeds",
    "jitter_view",
    "random_affine",
    "strong_view",
    "warp",
    "warp_mask",
    "weak_view",
]
