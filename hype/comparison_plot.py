"""The comparison's forest plot (hype.report_plots' forest plot, one line per study and model). Pure."""

from __future__ import annotations

from hype.comparison import Comparison
from hype.report_plots import forest_plot


def comparison_forest_plot(comparison: Comparison) -> str:
    """A PNG data URI: each model of each study with its CI (a point alone where there is no CI)."""
    infinity = comparison.mode == "hype-infinity"
    scale = 100.0 if infinity else 1.0
    rows = comparison.rows
    return forest_plot(
        [r.label for r in rows],
        [scale * r.estimate for r in rows],
        [float("nan") if r.ci_low is None else scale * r.ci_low for r in rows],
        [float("nan") if r.ci_high is None else scale * r.ci_high for r in rows],
        xlabel="HYPE-∞ (% error), 95% CI" if infinity else "HYPE-time (ms), 95% CI",
        reference=50.0 if infinity else None,
        reference_label="chance (50%)" if infinity else None,
    )
