"""Light image augmentation on tensors: random shifts and rotations of a whole batch at once.

Rules of :func:`augment_batch`:
    * Each image gets its own random rotation in ``[-rotate, +rotate]`` degrees and shift in
      ``[-shift, +shift]`` pixels along each axis (drawn from ``generator``, so a seeded run
      repeats), applied as one affine warp (``affine_grid`` + ``grid_sample``, bilinear, zeros
      outside the image). No per-sample Python loop, no host round trip: it runs where the
      batch lives.
    * ``shift == 0 and rotate == 0``, or a batch that is not images (B, C, H, W), returns the
      batch unchanged (the same tensor).
    * Only training batches are augmented; validation and test images never are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["augment_batch"]


def augment_batch(x: Tensor, shift: float, rotate: float, generator: torch.Generator) -> Tensor:
    """``x`` (B, C, H, W) randomly shifted by up to ``shift`` pixels and rotated by up to
    ``rotate`` degrees, per image."""
    if (shift <= 0 and rotate <= 0) or x.dim() != 4:
        return x
    b, _, h, w = x.shape
    u = torch.rand(b, 3, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1
    angle = u[:, 0] * (rotate * math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid works in [-1, 1] coordinates: a shift of s pixels is 2 s / size.
    tx = u[:, 1] * (2.0 * shift / w)
    ty = u[:, 2] * (2.0 * shift / h)
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
