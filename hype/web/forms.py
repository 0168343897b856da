"""Reading numbers from dashboard forms, with errors written for the researcher who typed them
(never Python's "could not convert string to float")."""

from __future__ import annotations

import math
from typing import Any, Mapping


class FormError(ValueError):
    """A form value that cannot be used; the message names the field as the page labels it."""


def number(form: Mapping[str, Any], field: str, label: str, kind: type = float, *, low: float | None = None,
           high: float | None = None) -> Any:
    """The field as ``kind`` (int or float), within [low, high] when given."""
    raw = str(form.get(field) or "").strip()
    what = "a whole number" if kind is int else "a number"
    if not raw:
        raise FormError(f"{label} must be {what}; the field is empty.")
    try:
        value = kind(raw)
    except ValueError:
        raise FormError(f"{label} must be {what}, not “{raw[:40]}”.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise FormError(f"{label} must be {what}, not “{raw[:40]}”.")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else (
            f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise FormError(f"{label} must be {bounds}, not {raw[:40]}.")
    return value
