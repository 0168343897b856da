"""TF1's legacy ``tf.image.resize_bilinear``, the resize inside the FID Inception graph.

Published FIDs resize with this rule, and the filter moves FID by whole points (Parmar et al.,
"On Aliased Resizing and Surprising Subtleties in GAN Evaluation", 2022), so it is reproduced
exactly rather than approximated with ``F.interpolate``.
"""

from __future__ import annotations

import torch


def _taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of TF1's legacy rule along one axis.

    The scale is a float32 quotient multiplied in float32, as in ``resize_bilinear_op.cc``:
    ``in = i * (in_size / out_size)``, no half-pixel offset, ``floor(in)`` and
    ``min(ceil(in), in_size - 1)``.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    src_floor = torch.floor(src)
    lower = src_floor.to(torch.int64).clamp_min(0)
    upper = torch.ceil(src).to(torch.int64).clamp_max(in_size - 1)
    lerp = src - src_floor
    return lower.to(device), upper.to(device), lerp.to(device)


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int] = (299, 299)) -> torch.Tensor:
    """Bilinear resize exactly as TF1's ``tf.image.resize_bilinear`` with its defaults
    (``align_corners=False``, no ``half_pixel_centers``, which TF only added in 1.14).

    TF's kernel computes, per output pixel, in float32::

        top    = tl + (tr - tl) * x_lerp
        bottom = bl + (br - bl) * x_lerp
        out    = top + (bottom - top) * y_lerp

    ``top`` depends only on the source row and the output column, so it is computed once per
    *source* row (a horizontal pass over the input), and the vertical pass then gathers two rows
    of that. Each output value goes through the same float32 operations in the same order as the
    kernel, so the result is bit-identical to the direct four-tap gather (on CPU; on CUDA fused
    multiply-adds may change the last bit), at a quarter of the gathers: the direct form
    gathered four full output-sized tensors from the input.

    ``x`` is float32 N x C x H x W; an input already of ``size`` is returned as is (the legacy
    rule is the identity there, and skipping it makes that bit-exact by construction).
    """
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got shape {tuple(x.shape)}")
    out_h, out_w = size
    in_h, in_w = int(x.shape[2]), int(x.shape[3])
    if (in_h, in_w) == (out_h, out_w):
        return x
    x = x.to(torch.float32)
    y_lo, y_hi, y_lerp = _taps(in_h, out_h, x.device)
    x_lo, x_hi, x_lerp = _taps(in_w, out_w, x.device)
    # Only the source rows some output row reads need the horizontal pass.
    rows = torch.unique(torch.cat([y_lo, y_hi]))
    if rows.numel() < in_h:
        remap = torch.full((in_h,), -1, dtype=torch.int64, device=x.device)
        remap[rows] = torch.arange(rows.numel(), device=x.device)
        x = x.index_select(2, rows)
        y_lo, y_hi = remap[y_lo], remap[y_hi]
    left = x.index_select(3, x_lo)
    right = x.index_select(3, x_hi)
    horizontal = left.add_((right.sub_(left)).mul_(x_lerp.view(1, 1, 1, out_w)))
    top = horizontal.index_select(2, y_lo)
    bottom = horizontal.index_select(2, y_hi)
    return top.add_(bottom.sub_(top).mul_(y_lerp.view(1, 1, out_h, 1)))
