"""Networks: U-Net encoder/decoders, the dual-decoder student, the EMA teacher, the CPS pair, UniMatch's network."""

from hdc_ray.model.nets import (
    CPSPair,
    DualDecoderNet,
    DualOutput,
    FPSegNet,
    SegNet,
    SegOutput,
    build_dual,
    build_segnet,
    count_parameters,
    ema_update,
    make_teacher,
)

__all__ = [
    "CPSPair",
    "DualDecoderNet",
    "DualOutput",
    "FPSegNet",
    "SegNet",
    "SegOutput",
    "build_dual",
    "build_segnet",
    "count_parameters",
    "ema_update",
    "make_teacher",
]
