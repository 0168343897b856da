"""Benchmark hype.metrics against its peers and against hype before this change, in one process.

    python experiments/bench_metrics.py                      # sizes of issue 17 (10k x 2048): ~15 min on 2 cores
    python experiments/bench_metrics.py --quick              # smaller sizes, a few minutes
    python experiments/bench_metrics.py --only kid --kid-peers tf32 --repeats 5
                                                             # KID vs torch-fidelity float32 only, ~2 min

Every line is a ratio against a baseline timed in the same run (median of --repeats rounds, runs
interleaved), with the relative difference of the values:

(a) Fréchet distance of 2048-d statistics: hype (Cholesky + eigvalsh) vs hype before (eigh + SVD),
    pytorch-fid (scipy sqrtm), torch-fidelity (eigvals of S1 S2), and plain torch Cholesky + eigvalsh.
(b) KID, 100 subsets x 1000: hype on float32 features (auto route: block passes over the pools'
    Gram matrices, and the per-subset route for comparison) vs torch-fidelity on float32 and
    float64, and hype before (float64).
(c) PRD, n + n, 20 clusters x 10 runs: hype vs the authors' prd_score.py algorithm (MiniBatchKMeans
    n_init=10 on float64, exactly as compute_prd_from_embedding casts; the module is not on PyPI so
    its three lines of clustering are restated here) and hype before. Over --prd-ref-seeds seeds of
    each: F_8 / F_1/8 mean and spread, how many hype curves lie inside the reference's envelope, and
    the largest difference of the mean curves in standard errors.
(d) precision/recall/density/coverage, k = 5: hype vs prdc, torch-fidelity's P/R, hype before.
(e) the TF1 resize (separable vs today's four-tap gather) and Inception extraction img/s.

"hype before" is hype/metrics at git revision --before (default: the commit before issue 17),
imported from a temporary copy as the package ``hype_before``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hype.metrics import resolve_device  # noqa: E402
from hype.metrics.fid import frechet_distance  # noqa: E402
from hype.metrics.kid import kid_from_features  # noqa: E402
from hype.metrics.prd import max_f_beta_pair, prd_from_features  # noqa: E402
from hype.metrics.prdc import prdc_from_features  # noqa: E402
from hype.metrics.reference import import_with_torchvision_stub  # noqa: E402
from hype.metrics.resize import tf1_resize_bilinear  # noqa: E402

BEFORE_REF = "c1d899d"


def load_before(ref: str) -> Any:
    """hype/metrics as of ``ref``, importable as ``hype_before``."""
    tmp = Path(tempfile.mkdtemp()) / "hype_before"
    tmp.mkdir()
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", ref, "hype/metrics/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:  # subpackages too (hype/metrics/encoders/ since issue 17)
        if name.endswith(".py"):
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{name}"], check=True, capture_output=True, text=True).stdout
            dest = tmp / Path(name).relative_to("hype/metrics")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(src)
    spec = importlib.util.spec_from_file_location("hype_before", tmp / "__init__.py", submodule_search_locations=[str(tmp)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["hype_before"] = mod
    spec.loader.exec_module(mod)
    for sub in ("fid", "kid", "prd", "prdc", "features"):
        setattr(mod, sub, importlib.import_module(f"hype_before.{sub}"))
    return mod


def synthetic_features(n: int, d: int, seed: int, shift: float = 0.0, modes: int = 20) -> np.ndarray:
    """Non-negative, clustered, anisotropic float32 features shaped roughly like pool3 activations."""
    rng = np.random.default_rng(seed)
    centers = np.abs(np.random.default_rng(0).normal(size=(modes, d))) * 0.6
    basis = np.random.default_rng(1).normal(size=(64, d)) / 32
    k = rng.integers(0, modes, n)
    x = centers[k] + rng.normal(size=(n, 64)) @ basis + rng.normal(size=(n, d)) * 0.1 + shift
    return np.abs(x).astype(np.float32)


def timed(fns: dict[str, Any], repeats: int, verbose: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """Median time of each function over ``repeats`` rounds, the functions interleaved in each
    round so that a change in the machine's load hits every contender alike (``verbose``: print
    every round's seconds and the load average)."""
    runs: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, Any] = {}
    for r in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            out[k] = fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            runs[k].append(time.perf_counter() - t0)
        if verbose:
            print(f"    round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()) + f"; {load()}", flush=True)
    return {k: float(np.median(v)) for k, v in runs.items()}, out


def load() -> str:
    """The load average (1, 5, 15 min): every figure is printed with it, since 2-thread timings on
    a shared machine mean little without it."""
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def report(title: str, times: dict[str, float], values: dict[str, float | None], ours: str = "hype") -> None:
    print(f"{title}; {load()} at the end")
    for k, t in times.items():
        v = values.get(k)
        rel = "" if v is None or k == ours or values.get(ours) is None else f"   rel. diff {abs(v - values[ours]) / abs(values[ours]):.1e}"
        ratio = "" if k == ours else f"   hype is {t / times[ours]:.2f}x faster"
        vs = "" if v is None else f"   value {v:.8g}"
        print(f"    {k:<34} {t:8.3f} s{vs}{ratio}{rel}")


def bench_fd(args, dev, before) -> None:
    d = 2048
    a = synthetic_features(args.n, d, 10).astype(np.float64)
    b = synthetic_features(args.n, d, 11, shift=0.05).astype(np.float64)
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    pfid = import_with_torchvision_stub("pytorch_fid.fid_score", "calculate_frechet_distance")
    tfid = import_with_torchvision_stub("torch_fidelity.metric_fid", "fid_statistics_to_metric")
    t1, t2 = torch.as_tensor(s1), torch.as_tensor(s2)

    def chol_eigvalsh():
        lower = torch.linalg.cholesky(t1)
        w = torch.linalg.eigvalsh(lower.T @ t2 @ lower)
        diff = mu1 - mu2
        return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * float(w.clamp_min(0).sqrt().sum()))

    frechet_distance(mu1[:8], s1[:8, :8], mu2[:8], s2[:8, :8], device=dev)  # warm-up
    fns = {
        "hype": lambda: frechet_distance(mu1, s1, mu2, s2, device=dev),
        "hype before": lambda: before.fid.frechet_distance(mu1, s1, mu2, s2, device=dev),
        "torch-fidelity (eigvals S1 S2)": lambda: tfid({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)["frechet_inception_distance"],
        "baseline torch cholesky+eigvalsh": chol_eigvalsh,
    }
    if not args.skip_scipy:
        fns["pytorch-fid (scipy sqrtm)"] = lambda: pfid(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times, vals = timed(fns, args.repeats)
    report(f"(a) Fréchet distance, d = {d}, statistics of {args.n} samples per set ({dev})", times, vals)


KID_PEERS = ("subsets", "tf32", "tf64", "before")


def bench_kid(args, dev, before) -> None:
    """hype's KID against torch-fidelity (and itself before), rounds interleaved; prints each
    round's seconds with the load average and the median ratio against torch-fidelity float32."""
    a = synthetic_features(args.n, 2048, 30)
    b = synthetic_features(args.n, 2048, 31, shift=0.02)
    kid_tf = import_with_torchvision_stub("torch_fidelity.metric_kid", "kid_features_to_metric")
    kw = {"kid_subsets": args.kid_subsets, "kid_subset_size": 1000, "rng_seed": 0, "verbose": False}
    all_fns = {
        "hype": lambda: kid_from_features(a, b, num_subsets=args.kid_subsets, seed=0, device=dev)["kid_mean"],
        "subsets": lambda: kid_from_features(a, b, num_subsets=args.kid_subsets, seed=0, device=dev, route="subsets")["kid_mean"],
        "tf32": lambda: kid_tf(torch.as_tensor(a), torch.as_tensor(b), **kw)["kernel_inception_distance_mean"],
        "tf64": lambda: kid_tf(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), **kw)["kernel_inception_distance_mean"],
        "before": lambda: before.kid.kid_from_features(a, b, num_subsets=args.kid_subsets, seed=0, device=dev)["kid_mean"],
    }
    names = {"hype": "hype", "subsets": "hype, one Gram matrix per subset", "tf32": "torch-fidelity float32",
             "tf64": "torch-fidelity float64", "before": f"hype before ({args.before})"}
    peers = args.kid_peers.split(",") if args.kid_peers else list(KID_PEERS)
    fns = {names[k]: all_fns[k] for k in ["hype", *[p for p in KID_PEERS if p in peers]]}
    times, vals = timed(fns, args.repeats, verbose=True)
    vals["float64 truth"] = kid_from_features(a.astype(np.float64), b.astype(np.float64), num_subsets=args.kid_subsets, seed=0, device=dev)["kid_mean"]
    report(f"(b) KID, {args.kid_subsets} subsets x 1000 of {args.n} x 2048 float32 features ({dev}, {torch.get_num_threads()} threads)", times, vals)
    print(f"    hype float32 vs float64 computation: rel. diff {abs(vals['hype'] / vals['float64 truth'] - 1):.1e}")
    if names["tf32"] in times:
        print(f"    KID speed ratio, torch-fidelity float32 / hype: {times[names['tf32']] / times['hype']:.2f}x "
              f"(median of {args.repeats} interleaved rounds)")


def reference_prd(eval_data: np.ndarray, ref_data: np.ndarray, seed: int, num_runs: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """prd_score.compute_prd_from_embedding: float64 copies, MiniBatchKMeans(n_clusters=20, n_init=10)
    ten times (unseeded there; numpy's global seed here, so the spread over seeds can be measured)."""
    from sklearn.cluster import MiniBatchKMeans

    np.random.seed(seed)
    eval_data = np.array(eval_data, dtype=np.float64)
    ref_data = np.array(ref_data, dtype=np.float64)
    slopes = np.tan(np.linspace(1e-10, math.pi / 2 - 1e-10, 1001))
    ps, rs = [], []
    for _ in range(num_runs):
        data = np.vstack([eval_data, ref_data])
        labels = MiniBatchKMeans(n_clusters=20, n_init=10).fit(data).labels_
        q = np.histogram(labels[: len(eval_data)], bins=20, range=[0, 20], density=True)[0]
        p = np.histogram(labels[len(eval_data):], bins=20, range=[0, 20], density=True)[0]
        prec = np.minimum(p[None, :] * slopes[:, None], q[None, :]).sum(axis=1)
        ps.append(prec)
        rs.append(prec / slopes)
    return np.mean(ps, 0), np.mean(rs, 0)


def bench_prd(args, dev, before) -> None:
    """Speed on seed 0, then the curve against the reference's own spread over --prd-ref-seeds
    seeds of each (interleaved, so the time ratio is a median over seeds)."""
    n = args.prd_n
    real = synthetic_features(n, 2048, 20)
    fake = synthetic_features(n, 2048, 21, shift=0.02, modes=14)
    name = "authors' prd_score.py (float64)"
    times = {"hype": [], name: []}
    refs, ours = [], []
    for s in range(args.prd_ref_seeds):
        t0 = time.perf_counter()
        ours.append(prd_from_features(real, fake, seed=s, device=dev))
        times["hype"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        refs.append(reference_prd(fake, real, seed=s))
        times[name].append(time.perf_counter() - t0)
    t_before, out_before = timed({"hype before": lambda: before.prd.prd_from_features(real, fake, seed=0, device=dev)}, 1)
    med = {k: float(np.median(v)) for k, v in times.items()} | t_before
    ref_f = np.array([max_f_beta_pair(np.clip(p, 0, 1), np.clip(r, 0, 1)) for p, r in refs])
    our_f = np.array([(o.f_8, o.f_1_8) for o in ours])
    f = {"hype": float(our_f[:, 0].mean()), name: float(ref_f[:, 0].mean()), "hype before": out_before["hype before"].f_8}
    report(f"(c) PRD, {n} + {n} x 2048, 20 clusters x 10 runs ({dev}); median of {args.prd_ref_seeds} seeds; "
           "value = F_8 (mean over seeds; hype before: seed 0)", med, f)
    print("    per-seed ratios: " + ", ".join(f"{r / h:.1f}x" for r, h in zip(times[name], times["hype"])))
    for label, vals in (("reference", ref_f), ("hype", our_f)):
        print(f"    {label:<9} F_8 {vals[:, 0].mean():.4f} +- {vals[:, 0].std(ddof=1):.4f} (range {vals[:, 0].min():.4f}..{vals[:, 0].max():.4f}), "
              f"F_1/8 {vals[:, 1].mean():.4f} +- {vals[:, 1].std(ddof=1):.4f}")
    curves = np.array([np.clip(p, 0, 1) for p, _ in refs])
    lo, hi = curves.min(0), curves.max(0)
    inside = [bool(((o.precision >= lo - 1e-12) & (o.precision <= hi + 1e-12)).all()) for o in ours]
    mine = np.array([o.precision for o in ours])
    diff = mine.mean(0) - curves.mean(0)
    se = np.sqrt(mine.var(0, ddof=1) / len(mine) + curves.var(0, ddof=1) / len(curves)) + 1e-12
    print(f"    precision curves: the reference's {len(refs)} seeds span up to {float((hi - lo).max()):.4f}; "
          f"{sum(inside)} of {len(ours)} hype seeds lie wholly inside that envelope; mean curves differ by at most "
          f"{float(np.abs(diff).max()):.4f} (max |z| {float(np.abs(diff / se).max()):.2f} over the angles)")


def bench_prdc(args, dev, before) -> None:
    import prdc

    n = args.prdc_n
    real = synthetic_features(n, 2048, 40)
    fake = synthetic_features(n, 2048, 41, shift=0.03)
    prc = import_with_torchvision_stub("torch_fidelity.metric_prc", "calculate_precision_recall_full")
    fns = {
        "hype (P/R/D/C)": lambda: prdc_from_features(real, fake, k_pr=5, k_dc=5, device=dev),
        "prdc package (P/R/D/C)": lambda: prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5),
        "torch-fidelity (P/R only)": lambda: prc(torch.as_tensor(fake), torch.as_tensor(real), neighborhood=5),
        "hype before (P/R/D/C)": lambda: before.prdc.prdc_from_features(real, fake, k_pr=5, k_dc=5, device=dev),
    }
    times, out = timed(fns, args.repeats)
    ours = out["hype (P/R/D/C)"]
    vals = {"hype (P/R/D/C)": ours["precision"], "prdc package (P/R/D/C)": float(out["prdc package (P/R/D/C)"]["precision"]),
            "torch-fidelity (P/R only)": float(out["torch-fidelity (P/R only)"][0]), "hype before (P/R/D/C)": out["hype before (P/R/D/C)"]["precision"]}
    report(f"(d) precision/recall/density/coverage, k = 5, {n} + {n} x 2048 ({dev}); value = precision", times, vals, ours="hype (P/R/D/C)")
    ref = out["prdc package (P/R/D/C)"]
    print("    all four vs prdc: " + ", ".join(f"{k} {ours[k]:.6f}/{float(ref[k]):.6f}" for k in ("precision", "recall", "density", "coverage")))


def bench_extract(args, dev, before) -> None:
    from hype.metrics import load_inception

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.integers(0, 256, size=(50, 3, 128, 128)), dtype=torch.float32)
    fns = {
        "separable (hype)": lambda: [tf1_resize_bilinear(x[i:i + 8]) for i in range(0, 50, 8)],
        "four-tap gather (hype before)": lambda: [before.features.tf1_resize_bilinear(x[i:i + 8]) for i in range(0, 50, 8)],
    }
    times, out = timed(fns, args.repeats)
    same = all(torch.equal(p, q) for p, q in zip(out["separable (hype)"], out["four-tap gather (hype before)"]))
    report("(e) TF1 resize of 50 images 128 -> 299 in batches of 8 (cpu)", times, {}, ours="separable (hype)")
    print(f"    bit-identical: {same}")
    ext = load_inception(device=dev)
    old = before.features.load_inception(device=dev)
    imgs = rng.integers(0, 256, size=(args.extract_n, 128, 128, 3), dtype=np.uint8)
    for e in (ext, old):
        e.extract(imgs[:16], batch_size=16, progress=False)  # TorchScript warm-up
    fns = {"hype (DataLoader workers)": lambda: ext.extract(imgs, batch_size=64, progress=False),
           "hype before (threads)": lambda: old.extract(imgs, batch_size=64, progress=False)}
    times, out = timed(fns, 1)
    print(f"    Inception extraction ({dev}), {args.extract_n} images 128x128: "
          + ", ".join(f"{k} {args.extract_n / t:.1f} img/s" for k, t in times.items())
          + f"; features identical: {np.array_equal(out['hype (DataLoader workers)'], out['hype before (threads)'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=10000, help="samples per set for FD statistics and KID")
    ap.add_argument("--kid-subsets", type=int, default=100)
    ap.add_argument("--kid-peers", default=None,
                    help=f"comma-separated KID contenders besides hype, from {','.join(KID_PEERS)} (default all; "
                         "'tf32' alone is the quick comparison)")
    ap.add_argument("--prd-n", type=int, default=10000)
    ap.add_argument("--prd-ref-seeds", type=int, default=5)
    ap.add_argument("--prdc-n", type=int, default=10000)
    ap.add_argument("--extract-n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-scipy", action="store_true", help="skip pytorch-fid's sqrtm (the slowest peer)")
    ap.add_argument("--quick", action="store_true", help="n = 3000, PRD/PRDC 3000, 20 KID subsets, 1 repeat")
    ap.add_argument("--before", default=BEFORE_REF, help="git revision of 'hype before'")
    ap.add_argument("--only", choices=["fd", "kid", "prd", "prdc", "extract"], action="append")
    args = ap.parse_args()
    if args.quick:
        args.n, args.prd_n, args.prdc_n, args.kid_subsets, args.repeats, args.prd_ref_seeds = 3000, 3000, 3000, 20, 1, 3
    torch.set_num_threads(args.threads)
    try:  # numpy's BLAS (torch-fidelity, prdc, scikit-learn) gets the same number of threads
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        print("threadpoolctl missing: numpy's BLAS uses its default thread count")
    dev = resolve_device(args.device)
    before = load_before(args.before)
    print(f"torch {torch.__version__}, device {dev}, {torch.get_num_threads()} threads; hype before = {args.before}; {load()}")
    for part in args.only or ["fd", "kid", "prd", "prdc", "extract"]:
        {"fd": bench_fd, "kid": bench_kid, "prd": bench_prd, "prdc": bench_prdc, "extract": bench_extract}[part](args, dev, before)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
