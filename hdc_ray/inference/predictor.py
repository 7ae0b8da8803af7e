"""The network applied to images of any size: resize to the working resolution, segment, back to native size.

``Predictor.predict(images)`` takes float32 ``(H_i, W_i)`` images in [0, 1] (``inputs.read_picture``) and
returns uint8 class-index masks of the same sizes. Exactly what training's evaluation does: the image is
resized bilinearly to ``input_size`` (``data.resize_image``, as the readers do), the class map is the argmax
at the working resolution, resized back with nearest-neighbour (``F.interpolate``, as
``train.evaluation`` does before scoring). With several checkpoints (an ensemble) and/or ``tta`` (the
horizontal flip training augments with), softmax probabilities are averaged before the argmax, as nnU-Net
does. ``predict_with_probabilities`` also returns those probabilities at native size, resized exactly as the
mask is (nearest), so their argmax is the mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from hdc_ray.data.dataset import resize_image
from hdc_ray.inference.sources import LoadedModel
from hdc_ray.model import SegNet, build_segnet
from hdc_ray.train.card import ModelCard


class Predictor:
    def __init__(self, models: Sequence[LoadedModel], device: torch.device | str = "cpu", tta: bool = False) -> None:
        if not models:
            raise ValueError("Predictor needs at least one model")
        self.card: ModelCard = models[0].card
        self.device = torch.device(device)
        self.tta = tta
        self.nets: list[SegNet] = []
        for m in models:
            net = build_segnet(m.card.model, m.card.num_classes)
            net.load_state_dict(m.weights)
            self.nets.append(net.to(self.device).eval())

    @property
    def size(self) -> int:
        return self.card.input_size

    def to_input(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, 1, S, S) float32 at the working resolution."""
        batch = np.stack([resize_image(image, self.size) for image in images])
        return torch.from_numpy(batch)[:, None].to(self.device)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K, S, S) softmax probabilities, averaged over the ensemble and the flips."""
        total = torch.zeros((x.shape[0], self.card.num_classes, *x.shape[2:]), device=x.device)
        views = 0
        for net in self.nets:
            total += net(x).logits.softmax(1)
            views += 1
            if self.tta:
                total += net(x.flip(-1)).logits.softmax(1).flip(-1)  # training's weak view flips horizontally
                views += 1
        return total / views

    @torch.no_grad()
    def classes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, S) class indices at the working resolution. One network without flips: the argmax of its
        logits, exactly as training's evaluation takes it (softmax ties could round differently)."""
        if len(self.nets) == 1 and not self.tta:
            return self.nets[0](x).logits.argmax(1)
        return self.probabilities(x).argmax(1)

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """uint8 masks ``(H_i, W_i)``, one per image, at each image's native size."""
        labels = self.classes(self.to_input(images))
        return [to_native(label, image.shape) for label, image in zip(labels, images, strict=True)]

    @torch.no_grad()
    def predict_with_probabilities(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(mask, float32 probabilities ``(K, H_i, W_i)``) per image; the masks are ``predict``'s."""
        x = self.to_input(images)
        if len(self.nets) == 1 and not self.tta:
            logits = self.nets[0](x).logits  # one pass: the mask stays the logits' argmax, as in ``classes``
            labels, probabilities = logits.argmax(1), logits.softmax(1)
        else:
            probabilities = self.probabilities(x)
            labels = probabilities.argmax(1)
        return [(to_native(label, image.shape), probabilities_to_native(p, image.shape)) for label, p, image in zip(labels, probabilities, images, strict=True)]

    def warm_up(self, batch_size: int = 1) -> None:
        """A forward pass on blank images: the first call of a batch shape pays for allocations (and oneDNN
        kernel choices) that timings should exclude."""
        self.classes(torch.zeros((batch_size, 1, self.size, self.size), device=self.device))


def probabilities_to_native(probabilities: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """(K, S, S) -> float32 (K, H, W) by nearest neighbour: the resize ``to_native`` gives the mask."""
    if tuple(probabilities.shape[1:]) != tuple(shape):
        probabilities = F.interpolate(probabilities[None], size=tuple(shape), mode="nearest")[0]
    return probabilities.float().cpu().numpy()


def to_native(label: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of an (S, S) class map to ``shape``, as ``train.evaluation`` scores it."""
    if tuple(label.shape) != tuple(shape):
        label = F.interpolate(label[None, None].float(), size=tuple(shape), mode="nearest")[0, 0].long()
    return label.to(torch.uint8).cpu().numpy()
