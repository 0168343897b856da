"""Fréchet distance between Gaussian fits of two feature sets (FID on Inception, FD_DINOv2 on
DINOv2; Heusel et al., 2017):

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

Only the *trace* of the square root is needed, and S1 S2 is similar to a symmetric PSD matrix,
so no general matrix square root (pytorch-fid's ``scipy.linalg.sqrtm``) is ever formed:

* **Cholesky route** (positive definite S1 = L L^T): S1 S2 is similar to L^T S2 L, so
  tr sqrt(S1 S2) = sum sqrt(eigvalsh(L^T S2 L)). One Cholesky and one eigenvalues-only symmetric
  solve: the cheapest exact route, and real by construction.
* **Gram route** (features given, fewer images than dimensions): with centred feature matrices
  A (n1 x d) and B (n2 x d), S1 S2 = A^T A B^T B / ((n1-1)(n2-1)), whose non-zero eigenvalues are
  the squared singular values of A B^T / sqrt((n1-1)(n2-1)). So tr sqrt(S1 S2) is the nuclear
  norm of an n1 x n2 matrix: exact for the singular covariances of n <= d images, and cheap.
* **Eigen route** (the safe fallback when S1 is singular and only statistics are given):
  tr sqrt(S1 S2) = nuclear norm of sqrt(S1) sqrt(S2) with null-space eigenvalues zeroed.
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


def _null_tol(w: torch.Tensor, d: int) -> torch.Tensor:
    """numpy's ``matrix_rank`` tolerance: eigenvalues below it are rounding noise of a null space."""
    return d * torch.finfo(w.dtype).eps * w.abs().max()


def _psd_sqrt(s: torch.Tensor, name: str) -> torch.Tensor:
    """Symmetric square root of a PSD matrix, null-space eigenvalues set to exactly zero: a
    covariance from n <= d images is singular, and the square root would turn the +-1e-16 noise of
    its null space into 1e-8-sized values, which summed over ~2000 directions visibly shift FD."""
    w, v = torch.linalg.eigh(s)
    _check_eigs(w, name)
    root = torch.where(w > _null_tol(w, s.shape[0]), w, torch.zeros_like(w)).sqrt()
    return (v * root) @ v.T


def _check_eigs(w: torch.Tensor, name: str) -> None:
    top = float(w.abs().max()) if w.numel() else 0.0
    low = float(w.min()) if w.numel() else 0.0
    if low < -NEG_EIG_RTOL * max(top, np.finfo(np.float64).tiny):
        raise MetricError(
            f"{name} has a significantly negative eigenvalue ({low:.3e}, largest {top:.3e}); "
            "it is not a covariance matrix (positive semi-definite)"
        )


def _trace_sqrt_eigen(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """tr sqrt(S1 S2) as the nuclear norm of sqrt(S1) sqrt(S2): works for any PSD pair."""
    return torch.linalg.svdvals(_psd_sqrt(s1, "sigma1") @ _psd_sqrt(s2, "sigma2")).sum()


def _trace_sqrt_cholesky(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor | None:
    """tr sqrt(S1 S2) via S1 = L L^T and eigvalsh(L^T S2 L); None when S1 is (numerically)
    singular, where a Cholesky factor either fails or carries rounding-sized pivots whose noise
    would enter the trace."""
    d = s1.shape[0]
    factor, info = torch.linalg.cholesky_ex(s1)
    if int(info) != 0:
        return None
    pivots = torch.diagonal(factor) ** 2
    if float(pivots.min()) <= d * torch.finfo(s1.dtype).eps * float(torch.diagonal(s1).max()):
        return None
    m = factor.T @ s2 @ factor
    w = torch.linalg.eigvalsh((m + m.T) / 2)
    _check_eigs(w, "the covariance product")
    return torch.where(w > _null_tol(w, d), w, torch.zeros_like(w)).sqrt().sum()


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    _check_eigs(torch.diagonal(s2), "sigma2")  # a negative variance is never a covariance
    fast = _trace_sqrt_cholesky(s1, s2)
    if fast is not None:
        return fast
    fast = _trace_sqrt_cholesky(s2, s1)  # the product's eigenvalues are symmetric in S1, S2
    return fast if fast is not None else _trace_sqrt_eigen(s1, s2)


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

    If the trace of the square root is not finite (a degenerate input), ``eps * I`` is added to
    both covariances with a warning, as pytorch-fid does, rather than returning NaN.
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
            f"FD: matrix square root of a near-singular product failed; adding {eps} to the "
            "diagonal of both covariances",
            RuntimeWarning,
            stacklevel=3,
        )
        eye = torch.eye(d, dtype=torch.float64, device=s1.device) * eps
        tr_covmean = _trace_sqrt_eigen(s1 + eye, s2 + eye)
        if not bool(torch.isfinite(tr_covmean)):
            raise MetricError("FD: matrix square root is not finite even after regularisation")
    diff = mu1 - mu2
    fid = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return float(fid)


def _frechet_gram(r: torch.Tensor, f: torch.Tensor) -> float:
    """FD from the features themselves through the n1 x n2 cross-Gram (module docstring)."""
    mu1, mu2 = r.mean(dim=0), f.mean(dim=0)
    a, b = r - mu1, f - mu2
    n1, n2 = r.shape[0], f.shape[0]
    tr1 = (a * a).sum() / (n1 - 1)
    tr2 = (b * b).sum() / (n2 - 1)
    tr_covmean = torch.linalg.svdvals(a @ b.T).sum() / float(np.sqrt((n1 - 1) * (n2 - 1)))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2 * tr_covmean)


def _check_fid_inputs(real: Any, fake: Any) -> tuple[np.ndarray, np.ndarray]:
    r, f = check_pair(real, fake)
    for name, x in (("real", r), ("generated", f)):
        require_count(x.shape[0], 2, name, "FD", "a covariance needs n - 1 >= 1 degrees of freedom")
    d = r.shape[1]
    small = min(r.shape[0], f.shape[0])
    if small <= d:
        warnings.warn(
            f"FD from {small} images in {d} dimensions: the covariance is rank-deficient "
            f"(rank <= n - 1 < {d}); FD is strongly biased at small n and only comparable "
            "between runs with the same number of images (published FIDs use >= 10k)",
            RuntimeWarning,
            stacklevel=3,
        )
    return r, f


def fd_tensors(rt: torch.Tensor, ft: torch.Tensor, *, eps: float = 1e-6) -> float:
    """FD of two float64 feature tensors on one device, by the cheaper exact route: the Gram
    route while the smaller set has fewer images than dimensions, else covariances."""
    if min(rt.shape[0], ft.shape[0]) <= rt.shape[1]:
        return _frechet_gram(rt, ft)
    mu1, s1 = _stats_t(rt)
    mu2, s2 = _stats_t(ft)
    return _frechet_tensors(mu1, s1, mu2, s2, eps=eps)


def fid_from_features(
    real: Any,
    fake: Any,
    *,
    eps: float = 1e-6,
    device: str | torch.device | None = None,
) -> float:
    """Fréchet distance between two feature sets (n x d each, float64 arithmetic): FID on
    Inception features, FD_DINOv2 on DINOv2 ones."""
    r, f = _check_fid_inputs(real, fake)
    dev = resolve_device(device)
    return fd_tensors(torch.as_tensor(r, device=dev), torch.as_tensor(f, device=dev), eps=eps)


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
    """FD with a percentile bootstrap interval over images (see ``hype.metrics.bootstrap``)."""
    from .bootstrap import fd_interval  # noqa: PLC0415 - bootstrap imports this module

    r, f = _check_fid_inputs(real, fake)
    ci = fd_interval(r, f, n_boot=n_boot, confidence=confidence, seed=seed, device=device, eps=eps)
    return {
        "fid": ci["value"],
        "boot_mean": ci["boot_mean"],
        "boot_std": ci["boot_std"],
        "ci_low": ci["low"],
        "ci_high": ci["high"],
        "confidence": confidence,
        "n_boot": n_boot,
    }


def _stats_t(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = t.mean(dim=0)
    c = t - mu
    return mu, (c.T @ c) / (t.shape[0] - 1)
