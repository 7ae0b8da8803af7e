"""FUGC 2025 code submission: segments the anterior (1) and posterior (2) lip of the cervix.

    from model import model
    net = model().load("./")     # reads hdc_ray_fugc.pt from that folder (or from beside this file)
    mask = net.predict(X)        # X: numpy (3, 336, 544) uint8 -> (336, 544) uint8 labels 0, 1, 2

The convention is FUGC's starting kit (ISBI 2025, Codabench competition 4781), as the teams' published
submissions follow it: a ``model.py`` defining a class ``model`` whose ``load(path)`` returns the loaded model
and whose ``predict(X)`` takes ONE image as a numpy array of shape (3, 336, 544) (channels, height, width:
the RGB PNG of grey content, 0..255) and returns the label mask at that size: 0 background, 1 anterior
(upper) lip, 2 posterior (lower) lip. Other shapes are accepted too: (H, W), (C, H, W) or (H, W, C) with
C <= 4; the mask always has the image's height and width.

It needs only numpy and torch: the network's source is copied in below from hdc-ray (``hdc_ray/model/unet.py``)
by ``hdc-ray export-fugc``, which also wrote the weights file and checked that this file reproduces
``hdc-ray predict`` on a test image. The steps are hdc-ray's, exactly: one grey channel (identical channels
kept as they are, colour mixed with ITU-R 601 luma weights), 8-bit / 255 (16-bit / 65535, floats min-max
unless already in [0, 1]), Pillow's bilinear resize to the working resolution (re-implemented here in numpy,
tap for tap), the network (an ensemble and/or the horizontal flip: softmax probabilities averaged), the argmax,
and a nearest-neighbour resize back to the image's size.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

WEIGHTS = "hdc_ray_fugc.pt"
FORMAT = "hdc-ray-fugc"  # what the weights file says it is (with "version")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, for images that really are colour

# >>> network: the source of hdc_ray/model/unet.py goes here in the exported file
from hdc_ray.model.unet import Decoder, Encoder, stage_widths  # noqa: E402

# <<< network


class SegNet(nn.Module):
    """hdc-ray's single segmenter (``model.nets.SegNet``): encoder + decoder, logits (B, K, H, W) only."""

    def __init__(self, arch: dict[str, Any], num_classes: int) -> None:
        super().__init__()
        widths = stage_widths(int(arch["base_width"]), int(arch["depth"]))
        residual = arch["backbone"] == "resunet"
        self.encoder = Encoder(1, widths, str(arch["norm"]), residual)
        self.decoder = Decoder(widths, num_classes, str(arch["norm"]), residual, float(arch["dropout"]))

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))[0]


class model:  # lower case: the name FUGC's evaluation imports
    def __init__(self) -> None:
        self.nets: list[SegNet] = []
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.size = 0  # the network's square input size
        self.tta = False
        self.card: dict[str, Any] = {}

    def load(self, path: str = "./") -> model:
        """Read the weights: ``path`` is the weights file or the folder holding it (else beside this file)."""
        state = _torch_load(_weights_file(path))
        if state.get("format") != FORMAT:
            raise ValueError(f"{path}: not a weights file written by hdc-ray export-fugc")
        self.card, self.tta = dict(state["card"]), bool(state["tta"])
        self.size = int(self.card["input_size"])
        self.nets = []
        for weights in state["members"]:
            net = SegNet(self.card["model"], len(self.card["class_names"]))
            net.load_state_dict(weights)
            self.nets.append(net.to(self.device).eval())
        return self

    def predict(self, X: Any) -> np.ndarray:
        """uint8 labels ``(H, W)`` for one image ``X`` (``(3, 336, 544)`` uint8 in FUGC)."""
        if not self.nets:
            raise RuntimeError("call load() before predict()")
        grey = unit_grey(np.asarray(X))  # (H, W) float32 in [0, 1]
        x = torch.from_numpy(resize_bilinear(grey, self.size))[None, None].to(self.device)  # (1, 1, S, S)
        with torch.no_grad():
            labels = self.classes(x)[0]  # (S, S)
            if tuple(labels.shape) != grey.shape:
                labels = F.interpolate(labels[None, None].float(), size=grey.shape, mode="nearest")[0, 0].long()
        return labels.to(torch.uint8).cpu().numpy()

    def classes(self, x: Tensor) -> Tensor:
        """(B, S, S) class indices: one network without flips, the argmax of its logits; otherwise of the
        softmax probabilities averaged over the networks and the horizontal flips (as hdc-ray predict)."""
        if len(self.nets) == 1 and not self.tta:
            return self.nets[0](x).argmax(1)
        total, views = torch.zeros((x.shape[0], len(self.card["class_names"]), *x.shape[2:]), device=x.device), 0
        for net in self.nets:
            total, views = total + net(x).softmax(1), views + 1
            if self.tta:
                total, views = total + net(x.flip(-1)).softmax(1).flip(-1), views + 1
        return (total / views).argmax(1)

    def save(self, path: str = "./") -> None:
        """FUGC's kit has a ``save``; nothing to do here (``hdc-ray export-fugc`` writes the weights)."""


def _weights_file(path: str) -> str:
    for candidate in (path, os.path.join(path, WEIGHTS), os.path.join(os.path.dirname(os.path.abspath(__file__)), WEIGHTS)):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"{WEIGHTS}: not found in {path} nor beside {os.path.abspath(__file__)}")


def _torch_load(path: str) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")


# ------------------------------------------------------------------- hdc-ray's input normalisation


def unit_grey(array: np.ndarray) -> np.ndarray:
    """float32 ``(H, W)`` in [0, 1], as hdc-ray's readers make it (``data.readers.grey_converted`` then
    ``unit_float_converted``)."""
    if array.ndim == 3:
        channels = np.moveaxis(array, -1, 0) if array.shape[-1] <= 4 else array  # (C, H, W)
        if len(channels) > 4:
            raise ValueError(f"expected one image with at most 4 channels, got shape {array.shape}")
        kept = channels[:3] if len(channels) in (3, 4) else channels[:1]  # a 4th is alpha, a 2nd is dropped
        if len(kept) == 1 or np.all(kept == kept[:1]):
            array = kept[0]
        else:
            luma = np.tensordot(np.array(LUMA), kept.astype(np.float64), axes=1)
            array = np.round(luma).astype(array.dtype) if array.dtype.kind in "ui" else luma
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a 2-D image (or channels of one), got shape {array.shape}")
    if array.dtype == np.uint8:
        return (array / 255.0).astype(np.float32)
    if array.dtype == np.uint16:
        return (array / 65535.0).astype(np.float32)
    values = array.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0 and array.dtype.kind == "f":
        return values.astype(np.float32)
    return ((values - low) / max(high - low, 1e-12)).astype(np.float32)


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W)`` float32 -> ``(size, size)``, bit for bit what hdc-ray's ``data.resize_image`` gets from
    Pillow (``Image.resize(BILINEAR)`` on a mode "F" image: anti-aliased when shrinking), clipped to [0, 1]."""
    if image.shape == (size, size):
        return image.astype(np.float32, copy=False)
    rows_done = _resample(image, size, axis=1)  # Pillow resamples horizontally first, then vertically
    return np.clip(_resample(rows_done, size, axis=0), 0.0, 1.0).astype(np.float32)


def _resample(image: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """One pass along ``axis``: float64 sums tap by tap in Pillow's order, stored as float32 as Pillow does."""
    values = np.moveaxis(image, axis, -1).astype(np.float64)
    index, weight = _taps(values.shape[-1], n_out)
    total = np.zeros((*values.shape[:-1], n_out))
    for t in range(index.shape[1]):
        total += values[..., index[:, t]] * weight[:, t]
    return np.moveaxis(total.astype(np.float32), -1, axis)


@functools.lru_cache(maxsize=8)  # one (H, W) pair per image size: FUGC's are all 336 x 544
def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights ``(n_out, taps)`` of Pillow's bilinear filter (``precompute_coeffs`` in
    its Resample.c): a triangle of support 1, widened by the scale when shrinking, normalised per output."""
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = filter_scale  # the bilinear filter's support (1.0) times the filter scale
    taps = math.ceil(support) * 2 + 1
    index, weight = np.zeros((n_out, taps), np.int64), np.zeros((n_out, taps))
    for i in range(n_out):
        center = (i + 0.5) * scale
        low, high = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        ks = [max(0.0, 1.0 - abs((x - center + 0.5) * (1.0 / filter_scale))) for x in range(low, high)]
        norm = 0.0
        for k in ks:  # summed in order, as Pillow does (numpy's pairwise sum rounds differently)
            norm += k
        for t, k in enumerate(ks):
            index[i, t], weight[i, t] = low + t, k / norm if norm != 0.0 else k
    return index, weight
