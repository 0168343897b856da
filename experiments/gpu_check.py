"""One-command check of every metric's CUDA path against the CPU, plus the GPU figures issue 17 asks
for (img/s of Inception and DINOv2 ViT-L/14 extraction; FD, KID and PRD times at 10k x 2048).

    python experiments/gpu_check.py            # ~3-5 min on one data-centre GPU, exit status 1 on any mismatch
    python experiments/gpu_check.py --small    # smaller sizes, for a first smoke run

What it checks, each on the same synthetic float32 features on both devices:
- FD (Cholesky route, n > d, and Gram route, n < d), KID (both routes), CMMD, P/R/D/C and the
  bootstrap intervals of compute_all_metrics agree with the CPU to the tolerances below;
- PRD's F_8 / F_1/8 on CUDA lie within 0.01 of the CPU's (the clustering draws the same random
  numbers on both, but float32 distances near a tie may label a point differently);
- each metric allocated CUDA memory while it ran (it did not silently fall back to the CPU);
- DINOv2 and Inception features from CUDA equal the CPU's to 1e-3 relative (TF32 is off).

DINOv2 runs with randomly initialised ViT-L/14 weights (``save_pretrained`` to a temporary dir,
~1.2 GB): throughput does not depend on the weights, and none can be downloaded here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_metrics import synthetic_features  # noqa: E402
from hype.metrics.cmmd import cmmd_from_features  # noqa: E402
from hype.metrics.fid import fid_from_features  # noqa: E402
from hype.metrics.kid import kid_from_features  # noqa: E402
from hype.metrics.prd import prd_from_features  # noqa: E402
from hype.metrics.prdc import prdc_from_features  # noqa: E402
from hype.metrics.runner import compute_all_metrics  # noqa: E402

FAILURES: list[str] = []
#: the device under test; --cpu-dry-run sets "cpu" to try this script on a machine without a GPU
DEV = "cuda"


def check(name: str, ok: bool, detail: str) -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    if not ok:
        FAILURES.append(name)


def on(device: str, fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """(result, seconds, peak CUDA bytes allocated while it ran; 1 off CUDA)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() - base if device == "cuda" else 1
    return out, dt, peak


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def compare_metrics(n: int, d: int) -> None:
    print(f"metrics, CUDA vs CPU, {n} + {n} x {d} float32 features")
    real = synthetic_features(n, d, 50)
    fake = synthetic_features(n, d, 51, shift=0.03, modes=14)
    cases: list[tuple[str, Callable[[str], Any], Callable[[Any, Any], tuple[bool, str]]]] = [
        ("FD (Cholesky, n > d)" if n > d else "FD (Gram, n < d)", lambda dev: fid_from_features(real, fake, device=dev),
         lambda g, c: (rel(g, c) < 1e-6, f"{g:.10g} vs {c:.10g}, rel {rel(g, c):.1e}")),
        ("FD (Gram, n < d)", lambda dev: fid_from_features(real[: d // 4], fake[: d // 4], device=dev),
         lambda g, c: (rel(g, c) < 1e-6, f"{g:.10g} vs {c:.10g}, rel {rel(g, c):.1e}")),
        ("KID (pool route)", lambda dev: kid_from_features(real, fake, num_subsets=50, device=dev, route="pools")["kid_mean"],
         lambda g, c: (rel(g, c) < 1e-6, f"{g:.10g} vs {c:.10g}, rel {rel(g, c):.1e}")),
        ("KID (per-subset route)", lambda dev: kid_from_features(real, fake, num_subsets=20, device=dev, route="subsets")["kid_mean"],
         lambda g, c: (rel(g, c) < 1e-6, f"{g:.10g} vs {c:.10g}, rel {rel(g, c):.1e}")),
        ("CMMD", lambda dev: cmmd_from_features(real / np.linalg.norm(real, axis=1, keepdims=True),
                                               fake / np.linalg.norm(fake, axis=1, keepdims=True), device=dev),
         lambda g, c: (rel(g, c) < 1e-5, f"{g:.10g} vs {c:.10g}, rel {rel(g, c):.1e}")),
        ("P/R/D/C", lambda dev: prdc_from_features(real, fake, k_pr=5, k_dc=5, device=dev),
         lambda g, c: (all(abs(g[k] - c[k]) < 1e-9 for k in c), ", ".join(f"{k} {g[k]:.6f}/{c[k]:.6f}" for k in c))),
        ("PRD", lambda dev: prd_from_features(real, fake, seed=0, device=dev),
         lambda g, c: (abs(g.f_8 - c.f_8) < 0.01 and abs(g.f_1_8 - c.f_1_8) < 0.01,
                       f"F_8 {g.f_8:.4f}/{c.f_8:.4f}, F_1/8 {g.f_1_8:.4f}/{c.f_1_8:.4f}")),
    ]
    for name, fn, judge in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g, tg, peak = on(DEV, lambda: fn(DEV))
            c, tc, _ = on("cpu", lambda: fn("cpu"))
        ok, detail = judge(g, c)
        check(name, ok and peak > 0, f"{detail}; {DEV} {tg:.3f} s, cpu {tc:.3f} s, {DEV} peak {peak / 2**20:.0f} MiB")
    small = 600
    kw = dict(seed=3, kid_subsets=10, kid_subset_size=300, prd_num_runs=3, n_boot=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g, tg, peak = on(DEV, lambda: compute_all_metrics(real[:small], fake[:small], device=DEV, **kw))
        c, tc, _ = on("cpu", lambda: compute_all_metrics(real[:small], fake[:small], device="cpu", **kw))
    worst = 0.0
    for metric, bounds in c["ci"].items():
        if metric in ("f_8", "f_1_8") or not isinstance(bounds, dict):  # PRD: see the PRD check
            continue
        for key, val in bounds.items():
            if isinstance(val, (int, float)) and isinstance(g["ci"][metric].get(key), (int, float)):
                worst = max(worst, rel(g["ci"][metric][key], val))
    check("bootstrap intervals (all but PRD)", worst < 1e-5 and peak > 0,
          f"largest relative difference {worst:.1e}; {DEV} {tg:.2f} s, cpu {tc:.2f} s")


def full_size_times(n: int) -> None:
    print(f"{DEV} times at {n} + {n} x 2048 (median of 3)")
    real = synthetic_features(n, 2048, 60)
    fake = synthetic_features(n, 2048, 61, shift=0.02, modes=14)
    for name, fn in (
        ("FD", lambda: fid_from_features(real, fake, device=DEV)),
        ("KID 100 x 1000", lambda: kid_from_features(real, fake, device=DEV)),
        ("PRD 20 clusters x 10 runs", lambda: prd_from_features(real, fake, device=DEV)),
        ("P/R/D/C k = 5", lambda: prdc_from_features(real, fake, k_pr=5, k_dc=5, device=DEV)),
    ):
        on(DEV, fn)  # warm-up: kernels, cuBLAS/cuSOLVER handles
        times = [on(DEV, fn)[1] for _ in range(3)]
        print(f"  {name:<28} {np.median(times):.3f} s")


def extraction(n: int) -> None:
    from transformers import Dinov2Config, Dinov2Model

    from hype.metrics import load_inception
    from hype.metrics.encoders import load_encoder

    print(f"extraction, {n} images 256 x 256")
    imgs = np.random.default_rng(0).integers(0, 256, size=(n, 256, 256, 3), dtype=np.uint8)
    inc_gpu, inc_cpu = load_inception(device=DEV), load_inception(device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        # ViT-L/14: 24 layers, 1024 wide, 16 heads, as dinov2-vitl14
        Dinov2Model(Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                 intermediate_size=4096, patch_size=14, image_size=518)).save_pretrained(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not the published dinov2-vitl14 weights"
            dino_gpu = load_encoder("dinov2-vitl14", tmp, DEV)
            dino_cpu = load_encoder("dinov2-vitl14", tmp, "cpu")
        for name, gpu, cpu in (("Inception", inc_gpu, inc_cpu), ("DINOv2 ViT-L/14", dino_gpu, dino_cpu)):
            gpu.extract(imgs[:64], batch_size=64, progress=False)  # warm-up
            feats, dt, peak = on(DEV, lambda: gpu.extract(imgs, batch_size=128, progress=False))
            ref = cpu.extract(imgs[:16], batch_size=16, progress=False)
            err = float(np.abs(feats[:16] - ref).max() / np.abs(ref).max())
            check(f"{name} features", err < 1e-3 and peak > 0, f"{n / dt:.1f} img/s on {DEV}; max rel. diff to CPU {err:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="3000-point comparisons, 2000-point timings, 256 images")
    ap.add_argument("--cpu-dry-run", action="store_true", help="run everything on the CPU against itself (tries the script, checks nothing about CUDA)")
    ap.add_argument("--sizes", type=int, nargs=3, metavar=("COMPARE_N", "TIMING_N", "IMAGES"), help="override the sizes")
    args = ap.parse_args()
    global DEV
    if args.cpu_dry_run:
        DEV = "cpu"
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available on this machine (torch " + torch.__version__ + "); nothing was checked")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name() if DEV == "cuda" else "CPU dry run"
    print(f"torch {torch.__version__}, {name}, CPU threads {torch.get_num_threads()}")
    compare_n, timing_n, images = args.sizes or ((3000, 2000, 256) if args.small else (5000, 10_000, 2048))
    compare_metrics(compare_n, 2048)
    full_size_times(timing_n)
    extraction(images)
    print("all checks passed" if not FAILURES else f"FAILED: {', '.join(FAILURES)}")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
