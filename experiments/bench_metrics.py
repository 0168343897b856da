"""Benchmark hype.metrics against the reference implementations.

    python experiments/bench_metrics.py                # a few minutes on 2 CPU cores
    python experiments/bench_metrics.py --prd-n 10000  # PRD at the size the brief names

(a) Fréchet distance of 2048-d statistics: hype (eigh + SVD in torch float64)
    vs pytorch-fid's ``calculate_frechet_distance`` (scipy ``sqrtm``).
(b) PRD: hype (torch k-means) vs the reference algorithm (scikit-learn
    MiniBatchKMeans, n_init=10, 10 runs) on the same features.
(c) Inception feature extraction, images/s at batch 64 vs one image at a time.

pytorch-fid imports torchvision at module level only for its data loading;
where torchvision is absent a stand-in module is placed in ``sys.modules`` for
that one import (same trick as tests/metrics/conftest.py). If pytorch-fid is
not installed, an inline copy of its scipy path is timed instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hype.metrics import load_inception, resolve_device  # noqa: E402
from hype.metrics.fid import frechet_distance  # noqa: E402
from hype.metrics.prd import max_f_beta_pair, prd_from_features  # noqa: E402
from hype.metrics.reference import import_with_torchvision_stub  # noqa: E402


def reference_frechet() -> tuple[Any, str]:
    if importlib.util.find_spec("pytorch_fid") is None:
        from scipy import linalg

        def calc(mu1, s1, mu2, s2):  # noqa: ANN001 - pytorch-fid's scipy path, verbatim in substance
            covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
            if np.iscomplexobj(covmean):
                covmean = covmean.real
            diff = mu1 - mu2
            return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)

        return calc, "inline copy of pytorch-fid's scipy sqrtm path (pytorch-fid not installed)"
    calculate_frechet_distance = import_with_torchvision_stub("pytorch_fid.fid_score", "calculate_frechet_distance")
    return calculate_frechet_distance, "pytorch_fid.fid_score.calculate_frechet_distance (scipy sqrtm)"


def synthetic_features(n: int, d: int, seed: int, shift: float = 0.0, modes: int = 20) -> np.ndarray:
    """Non-negative, clustered, anisotropic features shaped roughly like pool3
    activations, so k-means and sqrtm face realistic structure."""
    rng = np.random.default_rng(seed)
    centers = np.abs(np.random.default_rng(0).normal(size=(modes, d))) * 0.6
    basis = np.random.default_rng(1).normal(size=(64, d)) / 32
    k = rng.integers(0, modes, n)
    x = centers[k] + rng.normal(size=(n, 64)) @ basis + rng.normal(size=(n, d)) * 0.1 + shift
    return np.abs(x).astype(np.float32)


def reference_prd(eval_data: np.ndarray, ref_data: np.ndarray, num_runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.RandomState(seed)
    ps, rs = [], []
    slopes = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, 1001))
    data = np.vstack([eval_data, ref_data])
    for _ in range(num_runs):
        labels = MiniBatchKMeans(n_clusters=20, n_init=10, random_state=rng.randint(2**31)).fit(data).labels_
        q = np.histogram(labels[: len(eval_data)], bins=20, range=[0, 20], density=True)[0]
        p = np.histogram(labels[len(eval_data) :], bins=20, range=[0, 20], density=True)[0]
        a = np.minimum(p[None] * slopes[:, None], q[None]).sum(1)
        ps.append(np.clip(a, 0, 1))
        rs.append(np.clip(a / slopes, 0, 1))
    return np.mean(ps, 0), np.mean(rs, 0)


def timed(fn: Any, repeats: int = 1) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_fid(args: argparse.Namespace, dev: torch.device) -> None:
    d = 2048
    a = synthetic_features(args.fid_n, d, 10).astype(np.float64)
    b = synthetic_features(args.fid_n, d, 11, shift=0.05).astype(np.float64)
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    calc, name = reference_frechet()
    frechet_distance(mu1[:8], s1[:8, :8], mu2[:8], s2[:8, :8], device=dev)  # warm-up (CUDA context)
    t_h, v_h = timed(lambda: frechet_distance(mu1, s1, mu2, s2, device=dev), args.repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        t_r, v_r = timed(lambda: calc(mu1, s1, mu2, s2), args.repeats)
    print(f"(a) Frechet distance, d={d}, statistics of {args.fid_n} samples per set")
    print(f"    hype ({dev}):       {t_h:8.3f} s   FID = {v_h:.6f}")
    print(f"    reference (cpu):   {t_r:8.3f} s   FID = {v_r:.6f}   [{name}]")
    print(f"    speed-up x{t_r / t_h:.1f}, relative difference {abs(v_h - v_r) / abs(v_r):.2e}")


def bench_prd(args: argparse.Namespace, dev: torch.device) -> None:
    n = args.prd_n
    real = synthetic_features(n, 2048, 20)
    fake = synthetic_features(n, 2048, 21, shift=0.02, modes=14)
    t_h, res = timed(lambda: prd_from_features(real, fake, seed=0, device=dev))
    print(f"(b) PRD, {n} + {n} features x 2048, 20 clusters, 10 runs, 1001 angles")
    print(f"    hype torch k-means ({dev}): {t_h:8.2f} s   F8 = {res.f_8:.4f}  F1/8 = {res.f_1_8:.4f}")
    if args.skip_prd_reference:
        print("    reference skipped (--skip-prd-reference)")
        return
    t_r, (p, r) = timed(lambda: reference_prd(fake, real, 10, 0))
    f8, f18 = max_f_beta_pair(p, r)
    print(f"    reference MiniBatchKMeans (cpu): {t_r:8.2f} s   F8 = {f8:.4f}  F1/8 = {f18:.4f}")
    print(f"    speed-up x{t_r / t_h:.1f}")


def bench_extract(args: argparse.Namespace, dev: torch.device) -> None:
    t0 = time.perf_counter()
    ext = load_inception(device=dev)
    t_load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(args.extract_n, args.extract_size, args.extract_size, 3), dtype=np.uint8)
    bs = args.batch_size
    # TorchScript's profiling executor specialises on the first calls of each shape: warm both.
    for _ in range(2):
        ext.extract(imgs[: min(bs, len(imgs))], batch_size=bs, progress=False)
        ext.extract(imgs[:1], batch_size=1, progress=False)
    t_b, _ = timed(lambda: ext.extract(imgs, batch_size=bs, progress=False))
    n1 = min(len(imgs), args.extract_n_single)
    t_1, _ = timed(lambda: [ext.extract(imgs[i : i + 1], batch_size=1, progress=False) for i in range(n1)])
    print(f"(c) Inception feature extraction on {dev}, {args.extract_size}x{args.extract_size} uint8 -> 299")
    print(f"    weights: {ext.weights_source}")
    print(f"    sha256 {ext.weights_sha256}, load {t_load:.2f} s")
    print(f"    batch {bs}: {len(imgs) / t_b:8.1f} img/s ({len(imgs)} images)")
    print(f"    one at a time: {n1 / t_1:8.1f} img/s ({n1} images)   ratio x{(len(imgs) / t_b) / (n1 / t_1):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--fid-n", type=int, default=4096, help="samples per set behind the 2048-d statistics")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--prd-n", type=int, default=3000, help="features per set for PRD (brief: 10000)")
    ap.add_argument("--skip-prd-reference", action="store_true")
    ap.add_argument("--extract-n", type=int, default=128)
    ap.add_argument("--extract-n-single", type=int, default=32)
    ap.add_argument("--extract-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--only", choices=["fid", "prd", "extract"], action="append")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} CPU threads")
    parts = args.only or ["fid", "prd", "extract"]
    if "fid" in parts:
        bench_fid(args, dev)
    if "prd" in parts:
        bench_prd(args, dev)
    if "extract" in parts:
        bench_extract(args, dev)


if __name__ == "__main__":
    main()
