"""The printed table of figures: each one's value, ratio, target and verdict."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One printed line: what, measured value, ratio, target and whether it is met."""

    name: str
    value: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


def print_table(figures: list[Figure]) -> None:
    """Print `figures` as aligned columns under a header line."""
    header = Figure("figure", "measured", "ratio", "target (DESIGN.md §6)")
    widths = [
        max(len(getattr(f, k)) for f in [header, *figures]) for k in ("name", "value", "ratio")
    ]
    for figure in [header, *figures]:
        verdict = {None: "", True: "met", False: "NOT MET"}[figure.met]
        if figure is header:
            verdict = "verdict"
        print(
            f"{figure.name:<{widths[0]}}  {figure.value:>{widths[1]}}  {figure.ratio:>{widths[2]}}"
            f"  {figure.target:<26}  {verdict}"
        )


def ms(value: float) -> str:
    """`value` milliseconds as printed."""
    return f"{value:.3f} ms"


def spread_text(values_ms: list[float]) -> str:
    """The range of `values_ms` as printed."""
    return f"{min(values_ms):.3f}-{max(values_ms):.3f} ms"


def ratio_figure(name: str, value_ms: float, base_ms: float, limit: float | None) -> Figure:
    """A figure in ms with its ratio to `base_ms`, met when that ratio is within `limit`."""
    ratio = value_ms / base_ms
    if limit is None:
        return Figure(name, ms(value_ms), f"{ratio:.2f}x", "(information)")
    return Figure(name, ms(value_ms), f"{ratio:.2f}x", f"<= {limit}x bare hop", ratio <= limit)
