"""Plots for the study report: pure functions, data in, a `data:image/png;base64,...` URI out.

No pyplot and no global backend switch: every figure is a `matplotlib.figure.Figure` drawn on its own
Agg canvas, so these functions are safe inside a web worker or beside other matplotlib users. The
PNGs carry no metadata (matplotlib writes its homepage URL into "Software" by default, and the
report promises not to reference any web address). Labels come from users (model names): `$` is
escaped so matplotlib never parses a name as mathtext, and long names are shortened.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "png_data_uri",
    "forest_plot",
    "evaluator_distribution_plot",
    "staircase_plot",
    "prd_plot",
    "plot_label",
    "model_colors",
]

DPI = 110
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MAX_LABEL = 32


def plot_label(text: str, limit: int = MAX_LABEL) -> str:
    """A user-given name made safe for a matplotlib label: no mathtext, bounded length."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_bytes_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _color(model: str, index: int, colors: Mapping[str, str] | None) -> str:
    """The model's colour when the caller fixed one (so a model looks the same in every plot)."""
    if colors and model in colors:
        return colors[model]
    return COLORS[index % len(COLORS)]


def model_colors(models: Sequence[str]) -> dict[str, str]:
    return {m: COLORS[i % len(COLORS)] for i, m in enumerate(models)}


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def forest_plot(
    models: Sequence[str],
    estimates: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    *,
    xlabel: str,
    reference: float | None = None,
    reference_label: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> str:
    """Point estimates with their confidence intervals, first model at the top."""
    n = len(models)
    fig = _figure(7.0, 0.9 + 0.45 * max(n, 1))
    ax = fig.add_subplot(1, 1, 1)
    ys = np.arange(n)[::-1]
    palette = [_color(m, i, colors) for i, m in enumerate(models)]
    for y, est, lo, hi, color in zip(ys, estimates, ci_low, ci_high, palette):
        if _finite(lo) and _finite(hi):
            ax.plot([lo, hi], [y, y], color=color, lw=2.2, solid_capstyle="butt")
            ax.plot([lo, lo], [y - 0.15, y + 0.15], color=color, lw=1.2)
            ax.plot([hi, hi], [y - 0.15, y + 0.15], color=color, lw=1.2)
        if _finite(est):
            ax.plot([est], [y], "o", color=color, ms=7, mec="black", mew=0.6, zorder=3)
    if reference is not None:
        ax.axvline(reference, color="0.4", ls="--", lw=1)
        if reference_label:
            ax.text(reference, n - 0.45, " " + plot_label(reference_label, 60), color="0.35", fontsize=8, va="bottom")
    ax.set_yticks(ys)
    ax.set_yticklabels([plot_label(m) for m in models])
    ax.set_ylim(-0.7, n - 0.3 + (0.4 if reference_label else 0))
    ax.set_xlabel(plot_label(xlabel, 80))
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    return png_data_uri(fig)


def evaluator_distribution_plot(scores: Mapping[str, Sequence[float]], *, ylabel: str,
                                reference: float | None = None, seed: int = 0,
                                colors: Mapping[str, str] | None = None) -> str:
    """Per model: a violin of the per-evaluator scores (when there are enough to draw one), every
    evaluator as a jittered dot, and the mean as a black bar."""
    models = list(scores)
    n = len(models)
    fig = _figure(max(4.0, 1.2 + 1.3 * n), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    rng = np.random.default_rng(seed)
    for i, model in enumerate(models):
        values = np.asarray([v for v in scores[model] if _finite(v)], dtype=float)
        color = _color(model, i, colors)
        if values.size >= 3 and np.ptp(values) > 0:
            parts = ax.violinplot([values], positions=[i], widths=0.75, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_alpha(0.25)
                body.set_edgecolor(color)
        if values.size:
            ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, s=16, color=color, edgecolor="black",
                       linewidth=0.4, zorder=3)
            ax.plot([i - 0.25, i + 0.25], [values.mean()] * 2, color="black", lw=2, zorder=4)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=1)
    ax.set_xticks(range(n))
    ax.set_xticklabels([plot_label(m, 20) for m in models], rotation=20 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel(plot_label(ylabel, 80))
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)
    return png_data_uri(fig)


def staircase_plot(traces: Sequence[Mapping], *, min_ms: float | None = None, max_ms: float | None = None) -> str:
    """One panel per evaluator. Each trace is {"label": str, "blocks": [{"intensities": [...],
    "responses": [...], "mode": float | None}, ...]}: the exposure presented on each trial of each
    block, wrong answers marked with a cross, and each block's modal exposure as a dashed line."""
    n = max(len(traces), 1)
    fig = _figure(7.5, 1.2 + 1.9 * n)
    axes = [fig.add_subplot(n, 1, k + 1) for k in range(n)]
    for ax, trace in zip(axes, traces):
        for b, block in enumerate(trace.get("blocks", ())):
            color = COLORS[b % len(COLORS)]
            y = np.asarray(block.get("intensities", ()), dtype=float)
            x = np.arange(1, y.size + 1)
            if y.size:
                ax.plot(x, y, "-", color=color, lw=1.3, label=f"block {b + 1}")
                wrong = np.asarray([not r for r in block.get("responses", ())][: y.size], dtype=bool)
                if wrong.size == y.size and wrong.any():
                    ax.plot(x[wrong], y[wrong], "x", color=color, ms=4.5, mew=1.1)
            mode = block.get("mode")
            if _finite(mode):
                ax.axhline(mode, color=color, ls="--", lw=1, alpha=0.8)
        if min_ms is not None and max_ms is not None:
            pad = 0.05 * (max_ms - min_ms)
            ax.set_ylim(min_ms - pad, max_ms + pad)
        ax.set_title(plot_label(trace.get("label", ""), 90), fontsize=9, loc="left")
        ax.set_ylabel("exposure (ms)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(color="0.92")
        if trace.get("blocks"):
            ax.legend(fontsize=7, loc="upper right", ncol=min(len(trace["blocks"]), 4), frameon=False)
    axes[-1].set_xlabel("trial within block (x = wrong answer; dashed = block mode)", fontsize=8)
    fig.tight_layout()
    return png_data_uri(fig)


def prd_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
             colors: Mapping[str, str] | None = None) -> str:
    """PRD curves (Sajjadi et al. 2018): recall on x, precision on y, one line per model.
    `curves[model] = (precision, recall)`."""
    fig = _figure(5.2, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    for i, (model, (precision, recall)) in enumerate(curves.items()):
        p = np.asarray(precision, dtype=float)
        r = np.asarray(recall, dtype=float)
        ax.plot(r, p, color=_color(model, i, colors), lw=1.8, label=plot_label(model))
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall β")
    ax.set_ylabel("precision α")
    ax.set_aspect("equal")
    ax.grid(color="0.9")
    if curves:
        ax.legend(fontsize=8, loc="lower left")
    return png_data_uri(fig)
