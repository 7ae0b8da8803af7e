"""Per-image random streams.

Every random draw of a training step comes from a generator seeded by (run seed, epoch, iteration, the
image's position in the GLOBAL batch, stream). An image therefore gets the same augmentation and feature
noise whichever DDP rank processes it, which is what makes 1-worker and N-worker runs comparable.
"""

from __future__ import annotations

import numpy as np
import torch

# Stream ids keep independent draws for one image apart. STRONG2: UniMatch's second strong view; CUTMIX,
# CUTMIX2: the CutMix boxes of the first and second strong views.
WEAK, STRONG, FEATURE, SUBSAMPLE, STRONG2, CUTMIX, CUTMIX2 = 1, 2, 3, 4, 5, 6, 7


def derive_seed(*parts: int) -> int:
    """Mix integers into one 63-bit seed (SeedSequence hashing: nearby inputs give unrelated seeds)."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def image_seeds(base: tuple[int, ...], positions: range | list[int], stream: int) -> torch.Tensor:
    """(B,) int64 seeds, one per global batch position."""
    return torch.tensor([derive_seed(*base, p, stream) for p in positions], dtype=torch.int64)


def generators(seeds: torch.Tensor, device: torch.device | str = "cpu") -> list[torch.Generator]:
    # tolist(): one copy to the host; DDP moves the forward's noise seeds to the GPU, where int() per element
    # would synchronise once per image.
    return [torch.Generator(device=device).manual_seed(s) for s in seeds.tolist()]
