"""Fréchet Inception Distance (Heusel et al., 2017).

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

pytorch-fid takes ``scipy.linalg.sqrtm`` of the non-symmetric product S1 S2
(a complex Schur decomposition) and drops the imaginary part it produces. Only
the *trace* of the square root is needed, and S1 S2 is similar to the
symmetric PSD matrix M = sqrt(S1) S2 sqrt(S1) (same eigenvalues), so

    tr sqrt(S1 S2) = sum_i sqrt(lambda_i(M)) = sum_i sigma_i(sqrt(S1) sqrt(S2))

from two symmetric eigendecompositions and one SVD: faster (and on the GPU
when present), real by construction so no imaginary part can arise to be
dropped, and accurate for the singular covariances of n < 2048 images.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import MetricError, as_feature_matrix, check_pair, require_count

#: Eigenvalues below ``-NEG_EIG_RTOL * largest`` are not rounding noise: the
#: matrix is not a covariance. Rounding in a 2048-d float64 eigendecomposition
#: is ~1e-13 relative, so 1e-6 leaves ample room.
NEG_EIG_RTOL = 1e-6


def _to_tensor(x: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)


def feature_statistics(features: Any, device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (n-1) covariance, as pytorch-fid's ``np.cov(rowvar=False)``,
    computed in float64 on the device."""
    f = as_feature_matrix(features, "input")
    require_count(f.shape[0], 2, "", "a covariance", "n - 1 degrees of freedom")
    mu, sigma = _stats_t(torch.as_tensor(f, device=resolve_device(device)))
    return mu.cpu().numpy(), sigma.cpu().numpy()


def _psd_sqrt(s: torch.Tensor, name: str) -> torch.Tensor:
    """Symmetric square root of a PSD matrix.

    Eigenvalues within rounding of zero (below ``d * eps * largest``, numpy's
    ``matrix_rank`` tolerance) are set to exactly zero: a covariance from
    n <= d images is singular, and the square root would turn the +-1e-16
    noise of its null space into 1e-8-sized values, which summed over ~2000
    null directions visibly shifts FID.
    """
    w, v = torch.linalg.eigh(s)
    _check_eigs(w, name)
    top = w.abs().max()
    tol = s.shape[0] * torch.finfo(s.dtype).eps * top
    root = torch.where(w > tol, w, torch.zeros_like(w)).sqrt()
    return (v * root) @ v.T


def _check_eigs(w: torch.Tensor, name: str) -> None:
    top = float(w.abs().max()) if w.numel() else 0.0
    low = float(w.min()) if w.numel() else 0.0
    if low < -NEG_EIG_RTOL * max(top, np.finfo(np.float64).tiny):
        raise MetricError(
            f"{name} has a significantly negative eigenvalue ({low:.3e}, largest {top:.3e}); "
            "it is not a covariance matrix (positive semi-definite)"
        )


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """tr sqrt(S1 S2) as the nuclear norm of sqrt(S1) sqrt(S2).

    (sqrt(S1) sqrt(S2)) (sqrt(S1) sqrt(S2))^T = sqrt(S1) S2 sqrt(S1), which is
    similar to S1 S2, so its singular values are the square roots of the
    eigenvalues of S1 S2. Taking singular values avoids squaring the matrix
    first, so small eigenvalues keep full relative accuracy; they are real and
    non-negative by construction.
    """
    r1 = _psd_sqrt(s1, "sigma1")
    r2 = _psd_sqrt(s2, "sigma2")
    return torch.linalg.svdvals(r1 @ r2).sum()


def frechet_distance(
    mu1: Any,
    sigma1: Any,
    mu2: Any,
    sigma2: Any,
    *,
    eps: float = 1e-6,
    device: str | torch.device | None = None,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64.

    If the eigendecomposition fails or is not finite (near-singular
    covariances), ``eps * I`` is added to both covariances with a warning, as
    pytorch-fid does, rather than returning NaN.
    """
    dev = resolve_device(device)
    m1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    m2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1n = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2n = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = m1.shape[0]
    if m1.shape != m2.shape or m1.ndim != 1:
        raise MetricError(f"mean vectors differ in shape: {m1.shape} vs {m2.shape}")
    if s1n.shape != (d, d) or s2n.shape != (d, d):
        raise MetricError(f"covariances must be {d} x {d}, got {s1n.shape} and {s2n.shape}")
    for name, a in (("mu1", m1), ("mu2", m2), ("sigma1", s1n), ("sigma2", s2n)):
        if not np.isfinite(a).all():
            raise MetricError(f"{name} contains NaN or inf")

    return _frechet_tensors(
        _to_tensor(m1, dev), _to_tensor(s1n, dev), _to_tensor(m2, dev), _to_tensor(s2n, dev), eps=eps
    )


def _frechet_tensors(
    mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor, *, eps: float
) -> float:
    d = mu1.shape[0]
    s1 = (s1 + s1.T) / 2  # exact symmetry; a covariance can be asymmetric in the last bit
    s2 = (s2 + s2.T) / 2
    try:
        tr_covmean = _trace_sqrt_product(s1, s2)
        ok = bool(torch.isfinite(tr_covmean))
    except torch.linalg.LinAlgError:
        ok = False
    if not ok:
        warnings.warn(
            f"FID: matrix square root of a near-singular product failed; adding {eps} to the "
            "diagonal of both covariances",
            RuntimeWarning,
            stacklevel=3,
        )
        eye = torch.eye(d, dtype=torch.float64, device=s1.device) * eps
        tr_covmean = _trace_sqrt_product(s1 + eye, s2 + eye)
        if not bool(torch.isfinite(tr_covmean)):
            raise MetricError("FID: matrix square root is not finite even after regularisation")
    diff = mu1 - mu2
    fid = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return float(fid)


def _check_fid_inputs(real: Any, fake: Any) -> tuple[np.ndarray, np.ndarray]:
    r, f = check_pair(real, fake)
    for name, x in (("real", r), ("generated", f)):
        require_count(x.shape[0], 2, name, "FID", "a covariance needs n - 1 >= 1 degrees of freedom")
    d = r.shape[1]
    small = min(r.shape[0], f.shape[0])
    if small <= d:
        warnings.warn(
            f"FID from {small} images in {d} dimensions: the covariance is rank-deficient "
            f"(rank <= n - 1 < {d}); FID is strongly biased at small n and only comparable "
            "between runs with the same number of images (published FIDs use >= 10k)",
            RuntimeWarning,
            stacklevel=3,
        )
    return r, f


def fid_from_features(
    real: Any,
    fake: Any,
    *,
    eps: float = 1e-6,
    device: str | torch.device | None = None,
) -> float:
    """FID between two feature sets (n x d each, float64 arithmetic)."""
    r, f = _check_fid_inputs(real, fake)
    dev = resolve_device(device)
    mu1, s1 = _stats_t(torch.as_tensor(r, device=dev))
    mu2, s2 = _stats_t(torch.as_tensor(f, device=dev))
    return _frechet_tensors(mu1, s1, mu2, s2, eps=eps)


def fid_bootstrap(
    real: Any,
    fake: Any,
    *,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    eps: float = 1e-6,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """FID with a percentile bootstrap interval over images (both sets
    resampled with replacement, independently).

    Resampled sets contain duplicates, which lowers the covariance rank and
    biases FID upward, so the bootstrap distribution sits above the point
    estimate; the interval describes image-sampling variability, not an
    unbiased estimate. Each replicate costs two d x d eigendecompositions
    (~1 s at d = 2048 on a CPU), so keep ``n_boot`` modest off the GPU.
    """
    if n_boot < 2:
        raise MetricError("fid_bootstrap needs n_boot >= 2")
    if not 0 < confidence < 1:
        raise MetricError("confidence must be in (0, 1)")
    r, f = _check_fid_inputs(real, fake)
    dev = resolve_device(device)
    point = fid_from_features(r, f, eps=eps, device=dev)
    rng = np.random.default_rng(seed)
    rt = torch.as_tensor(r, device=dev)
    ft = torch.as_tensor(f, device=dev)
    values = np.empty(n_boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(n_boot):
            ir = torch.as_tensor(rng.integers(0, r.shape[0], r.shape[0]), device=dev)
            jf = torch.as_tensor(rng.integers(0, f.shape[0], f.shape[0]), device=dev)
            mu1, s1 = _stats_t(rt[ir])
            mu2, s2 = _stats_t(ft[jf])
            values[b] = _frechet_tensors(mu1, s1, mu2, s2, eps=eps)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return {
        "fid": point,
        "boot_mean": float(values.mean()),
        "boot_std": float(values.std(ddof=1)),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "confidence": confidence,
        "n_boot": n_boot,
    }


def _stats_t(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = t.mean(dim=0)
    c = t - mu
    return mu, (c.T @ c) / (t.shape[0] - 1)
