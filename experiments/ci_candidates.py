"""More candidate intervals for the one cell no default meets (issue 15 part 3: HYPE-infinity at 10
evaluators, misses within 1 point), measured on the coverage harness's own simulated studies and on the
random-answerer populations. Exploration: none of these intervals is in hype.scoring; they are vectorised
re-implementations (every study of a chunk at once), and the studentized bootstrap is re-implemented
beside them as the reference (it reproduces hype.scoring's figures: the random-answerer cells exactly).

Candidates (p = pooled error rate, se = its delta-method SE over evaluators, as hype.scoring's studentized):
  score-t       Wilson-type bootstrap-t: pivot (p - P) / (se * sqrt(P(1-P) / (p(1-p)))), i.e. the SE at the
                hypothesised rate P with the over-dispersion estimated from the data; its quantiles from the
                bootstrap (each resample's own over-dispersion), inverted by solving the quadratic in P.
  score-t-k2    the same with the variance function (P(1-P))^2 (logit-like) instead of P(1-P).
  t-G1          bootstrap-t whose quantiles' asymmetric half is scaled by sqrt(n(n-1))/(n-2) (the factor that
                unbiases a sample skewness's moments).
  tibshirani    Tibshirani (1988) variance-stabilised bootstrap: log se* regressed on p* over the resamples
                (each resample's delta SE standing in for the nested bootstrap's), g = integral of 1/s, then
                the basic bootstrap interval on g's scale; tibshirani-t studentizes on that scale as well.
  KG-CP         Korn & Graubard (1998), survey statistics' interval for a proportion from a cluster sample
                (R survey's svyciprop(method="beta")): Clopper-Pearson at the effective sample size
                p(1-p)/v, v = n/(n-1) * sum((e_i - p t_i)^2) / N^2, scaled by (z / t_{n-1})^2.
  KG-Jeffreys   the same with the Jeffreys beta quantiles.
  union         the smallest interval holding both studentized and KG-CP (per side the more cautious bound):
                covers whenever either does, so never less than the studentized default.
  union-J       studentized and KG-Jeffreys.
  kg-t          the union on the side toward 1/2 only (the upper bound of an error rate below 1/2), the
                studentized bound on the other side.
  tilted-t      (--tilted, slow) test-inversion bootstrap-t: for a hypothesised mean P the evaluators are
                exponentially tilted to mean P and resampled; the bound is the P at which the observed t is
                at the tilted bootstrap's 2.5% point (Carpenter 1999).

    python experiments/ci_candidates.py --sizes 10 --studies 40000 --seed 8     # one cell, +-0.08 points
    python experiments/ci_candidates.py --sizes 30,60 --studies 10000
    python experiments/ci_candidates.py --random-answerers 0.1,0.2 --sizes 10,30 --studies 3000
    python experiments/ci_candidates.py --sizes 10 --studies 2000 --tilted
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from ci_coverage import _pool
from ci_random_answerers import counts as random_answerer_counts
from hype import simulate as sm

ALPHA = 0.025
Interval = tuple[np.ndarray, np.ndarray]


def _quadratic_root(p: np.ndarray, c: np.ndarray, upper: bool) -> np.ndarray:
    """The root on the upper / lower side of p of (p - P)^2 = c P (1 - P)."""
    a, b = 1 + c, -(2 * p + c)
    disc = np.sqrt(np.maximum(b * b - 4 * a * p * p, 0))
    return (-b + disc) / (2 * a) if upper else (-b - disc) / (2 * a)


def _korn_graubard(p: np.ndarray, se: np.ndarray, total: np.ndarray, n: int, jeffreys: bool) -> Interval:
    v = n / (n - 1) * se * se
    n_eff = np.minimum(np.where(v > 0, p * (1 - p) / np.where(v > 0, v, 1), total), total)
    n_eff = n_eff * (stats.norm.ppf(1 - ALPHA) / stats.t.ppf(1 - ALPHA, n - 1)) ** 2
    x = p * n_eff
    if jeffreys:
        low = stats.beta.ppf(ALPHA, x + 0.5, n_eff - x + 0.5)
        high = stats.beta.ppf(1 - ALPHA, x + 0.5, n_eff - x + 0.5)
    else:
        low = stats.beta.ppf(ALPHA, np.maximum(x, 1e-12), n_eff - x + 1)
        high = stats.beta.ppf(1 - ALPHA, x + 1, np.maximum(n_eff - x, 1e-12))
    return np.where(x > 0, low, 0.0), np.where(x < n_eff, high, 1.0)


def intervals(errors: np.ndarray, trials: np.ndarray, n_resamples: int, rng: np.random.Generator) -> dict[str, Interval]:
    """Every candidate's 95% interval for each study (row) of `errors` / `trials` (studies x evaluators),
    all from the same bootstrap resamples."""
    s, n = errors.shape
    total = trials.sum(1)
    p = errors.sum(1) / total
    se = np.sqrt(np.square(errors - p[:, None] * trials).sum(1)) / total
    rows = np.arange(s)[:, None, None]
    idx = rng.integers(0, n, size=(s, n_resamples, n))
    e, t = errors[rows, idx], trials[rows, idx]
    total_b = t.sum(2)
    pb = e.sum(2) / total_b
    seb = np.sqrt(np.square(e - pb[..., None] * t).sum(2)) / total_b
    floor = (se / math.sqrt(n))[:, None]  # hype.scoring's floor on a resample's SE
    out: dict[str, Interval] = {}

    t_star = (pb - p[:, None]) / np.maximum(seb, floor)
    q_lo, q_hi = np.quantile(t_star, [ALPHA, 1 - ALPHA], axis=1)
    out["studentized"] = (np.clip(p - q_hi * se, 0, 1), np.clip(p - q_lo * se, 0, 1))

    k = math.sqrt(n * (n - 1)) / (n - 2)
    half, lean = (q_hi - q_lo) / 2, (q_hi + q_lo) / 2
    out["t-G1"] = (np.clip(p - (k * lean + half) * se, 0, 1), np.clip(p - (k * lean - half) * se, 0, 1))

    v, vb = p * (1 - p), pb * (1 - pb)
    safe_vb = np.where(vb > 0, vb, 1)
    for name, power in (("score-t", 1), ("score-t-k2", 2)):
        se_at_p = np.where(vb > 0, seb * (v[:, None] / safe_vb) ** (power / 2), 0.0)
        s_lo, s_hi = np.quantile((pb - p[:, None]) / np.maximum(se_at_p, floor), [ALPHA, 1 - ALPHA], axis=1)
        if power == 1:  # (p - P)^2 = q^2 se^2 P(1-P) / v
            out[name] = (_quadratic_root(p, s_hi**2 * se**2 / v, False), _quadratic_root(p, s_lo**2 * se**2 / v, True))
        else:  # p - P = c P(1-P), c = q se / v: the root in [0, 1]
            def root(q: np.ndarray) -> np.ndarray:
                c = q * se / v
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = (1 + c - np.sqrt(np.maximum((1 + c) ** 2 - 4 * c * p, 0))) / (2 * c)
                return np.where(np.abs(c) < 1e-12, p, r)
            out[name] = (root(s_hi), root(s_lo))

    # Tibshirani: s(P) = exp(a + b P) fitted to (p*, se*); g(P) = (exp(-b p) - exp(-b P)) exp(-a) / b, g(p) = 0
    y = np.log(np.maximum(seb, floor))
    xm, ym = pb.mean(1, keepdims=True), y.mean(1, keepdims=True)
    b = ((pb - xm) * (y - ym)).sum(1) / np.maximum(np.square(pb - xm).sum(1), 1e-300)
    b = np.where(np.isfinite(b) & (np.abs(b) > 1e-9), b, 1e-9)
    a = ym[:, 0] - b * xm[:, 0]
    g_star = (np.exp(-b * p)[:, None] - np.exp(-b[:, None] * pb)) / b[:, None] * np.exp(-a)[:, None]

    def g_inverse(value: np.ndarray) -> np.ndarray:
        arg = np.exp(-b * p) - b * np.exp(a) * value
        return np.clip(np.where(arg > 0, -np.log(np.maximum(arg, 1e-300)) / b, np.where(b > 0, 1.0, 0.0)), 0, 1)
    g_lo, g_hi = np.quantile(g_star, [ALPHA, 1 - ALPHA], axis=1)
    out["tibshirani"] = (g_inverse(-g_hi), g_inverse(-g_lo))
    se_g, se_g_star = se * np.exp(-a - b * p), np.maximum(seb, floor) * np.exp(-a[:, None] - b[:, None] * pb)
    tg_lo, tg_hi = np.quantile(g_star / se_g_star, [ALPHA, 1 - ALPHA], axis=1)
    out["tibshirani-t"] = (g_inverse(-tg_hi * se_g), g_inverse(-tg_lo * se_g))

    out["KG-CP"] = _korn_graubard(p, se, total, n, jeffreys=False)
    out["KG-Jeffreys"] = _korn_graubard(p, se, total, n, jeffreys=True)
    for name, other in (("union", "KG-CP"), ("union-J", "KG-Jeffreys")):
        out[name] = (np.minimum(out["studentized"][0], out[other][0]), np.maximum(out["studentized"][1], out[other][1]))
    # the union on the side toward 1/2 only (where a rate's sampling distribution leans), bootstrap-t's bound on the other
    low_side = p <= 0.5
    out["kg-t"] = (np.where(low_side, out["studentized"][0], out["union"][0]),
                   np.where(low_side, out["union"][1], out["studentized"][1]))
    return out


def _tilt(x: np.ndarray, mean: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Exponential-tilt weights w_i ~ exp(lam x_i) per row with sum(w x) = mean (Newton on lam)."""
    lam = np.zeros(x.shape[0])
    centred = x - x.mean(1, keepdims=True)
    for _ in range(iterations + 1):
        z = lam[:, None] * centred
        w = np.exp(z - z.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        m = (w * x).sum(1)
        lam = lam + (mean - m) / np.maximum((w * np.square(x - m[:, None])).sum(1), 1e-12)
    return w


def tilted_interval(rates: np.ndarray, n_resamples: int, rng: np.random.Generator, steps: int = 14) -> Interval:
    """Test-inversion bootstrap-t of a mean of equal-weight rates (studies x evaluators), by bisection with
    common random numbers."""
    s, n = rates.shape
    mean, se = rates.mean(1), rates.std(1) / math.sqrt(n)
    floor = se / math.sqrt(n)
    u = rng.random((s, n_resamples, n))

    def p_value(mu: np.ndarray) -> np.ndarray:  # P*(T* <= T_obs(mu)) under the rates tilted to mean mu
        cdf = np.cumsum(_tilt(rates, mu), 1)
        cdf[:, -1] = 1.0
        draw = np.take_along_axis(np.broadcast_to(rates[:, None, :], u.shape), (u[..., None] > cdf[:, None, None, :]).sum(-1), 2)
        t_star = (draw.mean(2) - mu[:, None]) / np.maximum(draw.std(2) / math.sqrt(n), floor[:, None])
        return (t_star <= ((mean - mu) / se)[:, None]).mean(1)

    bounds = []
    for upper in (False, True):
        lo, hi = (mean.copy(), rates.max(1) - 1e-9) if upper else (rates.min(1) + 1e-9, mean.copy())
        for _ in range(steps):
            mid = (lo + hi) / 2
            pv = p_value(mid)
            plausible = pv > ALPHA if upper else pv < 1 - ALPHA
            lo, hi = (np.where(plausible, mid, lo), np.where(plausible, hi, mid)) if upper else \
                (np.where(plausible, lo, mid), np.where(plausible, mid, hi))
        bounds.append((lo + hi) / 2)
    return bounds[0], bounds[1]


def _studies(args: argparse.Namespace, n: int, share: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(errors, trials, truth): the harness's nested studies (ci_coverage.py, same seed) or the
    random-answerer population's (ci_random_answerers.py, same seeds)."""
    if share is None:
        pool = _pool("hype-infinity", args.studies * 60, np.random.default_rng(args.seed))
        keep = (np.arange(args.studies * 60) % 60) < n
        data, truth = pool.subset(keep), sm.true_infinity_rates(sm.Population()).overall
    else:
        big = random_answerer_counts(2_000_000, share, np.random.default_rng(9))
        truth = float(big.errors.sum() / big.n_trials.sum())
        data = random_answerer_counts(args.studies * n, share, np.random.default_rng(3))
    return (data.errors.reshape(-1, n).astype(float), data.n_trials.reshape(-1, n).astype(float), truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=2000, help="[2000; 1000 with --random-answerers, as its script]")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sizes", default="10,30,60")
    parser.add_argument("--random-answerers", default="", help="shares, e.g. 0.1,0.2 [none: the default population]")
    parser.add_argument("--tilted", action="store_true", help="also the (slow) test-inversion bootstrap-t")
    args = parser.parse_args()
    shares = [float(v) for v in args.random_answerers.split(",")] if args.random_answerers else [None]
    resamples = args.resamples if not args.random_answerers or args.resamples != 2000 else 1000
    print("| population | evaluators | method | coverage % | truth above % | truth below % | above - below | half-width | studies |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for share in shares:
        label = "default" if share is None else f"{share:.0%} random answerers"
        for n in [int(v) for v in args.sizes.split(",")]:
            start = time.perf_counter()
            errors, trials, truth = _studies(args, n, share)
            rng = np.random.default_rng([args.seed, n])
            found: dict[str, list[Interval]] = {}
            step = max(1, 4_000_000 // (resamples * n))
            for a in range(0, errors.shape[0], step):
                for name, bounds in intervals(errors[a:a + step], trials[a:a + step], resamples, rng).items():
                    found.setdefault(name, []).append(bounds)
                if args.tilted:
                    found.setdefault("tilted-t", []).append(
                        tilted_interval(errors[a:a + step] / trials[a:a + step], min(resamples, 1000), rng))
            for name, parts in found.items():
                low, high = np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts])
                above, below = 100 * np.mean(high < truth), 100 * np.mean(low > truth)
                print(f"| {label} | {n} | {name} | {100 - above - below:.1f} | {above:.2f} | {below:.2f} | {above - below:+.2f} |"
                      f" {50 * np.mean(high - low):.2f} points | {low.size} |", flush=True)
            print(f"<!-- {label}, {n} evaluators: truth {truth:.5f}; {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
