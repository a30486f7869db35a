"""Horizontal grouped bar charts as plain geometry, drawn as inline SVG by the templates
(reports/templates/charts.html.j2): no JavaScript, nothing fetched, readable offline."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

Number = int | float

LABEL_WIDTH = 230
PLOT_WIDTH = 420
VALUE_WIDTH = 110
BAR_HEIGHT = 12
ROW_GAP = 8
TOP = 24  # room for the legend
LEGEND_STEP = 120
COLORS = ("#0969da", "#8250df", "#1a7f37", "#bf8700")


@dataclass(frozen=True)
class Bar:
    value: Number
    x: float
    y: float
    width: float
    color: str


@dataclass(frozen=True)
class ChartRow:
    label: str
    label_y: float
    bars: list[Bar]
    mismatch: bool


@dataclass(frozen=True)
class BarChart:
    title: str
    series: list[tuple[str, str, int]]  # legend: (name, color, x)
    rows: list[ChartRow]
    width: int
    height: int
    bar_height: int
    label_x: int
    left_out: int  # rows not drawn (all are in the JSON)


def bar_chart(
    title: str,
    series: Sequence[str],
    rows: Sequence[tuple[str, Sequence[Number]]],
    mismatched: Collection[str] = (),
    max_rows: int = 25,
) -> BarChart:
    """One row per label, one bar per series; mismatching rows are kept when rows are capped."""
    shown = list(rows)
    if len(shown) > max_rows:
        shown = [r for r in rows if r[0] in mismatched][:max_rows]
        shown += [r for r in rows if r[0] not in mismatched][: max_rows - len(shown)]
    largest = max((abs(v) for _, values in shown for v in values), default=0) or 1
    row_height = BAR_HEIGHT * len(series) + ROW_GAP
    chart_rows = []
    for index, (label, values) in enumerate(shown):
        top = TOP + index * row_height
        bars = [
            Bar(value, LABEL_WIDTH, top + i * BAR_HEIGHT, abs(value) / largest * PLOT_WIDTH, COLORS[i % len(COLORS)])
            for i, value in enumerate(values)
        ]
        chart_rows.append(ChartRow(label, top + len(series) * BAR_HEIGHT / 2 + 4, bars, label in mismatched))
    return BarChart(
        title=title,
        series=[(name, COLORS[i % len(COLORS)], LABEL_WIDTH + i * LEGEND_STEP) for i, name in enumerate(series)],
        rows=chart_rows,
        width=LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH,
        height=TOP + len(shown) * row_height,
        bar_height=BAR_HEIGHT,
        label_x=LABEL_WIDTH - 6,
        left_out=len(rows) - len(shown),
    )
