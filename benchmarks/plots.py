"""Figures of a NAS-Bench-201 benchmark grid (matplotlib, Agg, PNG and PDF).

Per observation policy, four figures with one panel per dataset:

- ``<observe>-regret-queries``: validation regret vs queries (log y);
- ``<observe>-regret-gpu-hours``: validation regret vs simulated GPU-hours (log x, log y);
- ``<observe>-test-queries``: incumbent test accuracy vs queries;
- ``<observe>-rank-queries``: average rank of the methods vs queries.

Lines are means over seeds, bands one standard error either side (none for a single
seed). Zero regret (the best cell found) cannot be drawn on a log axis, so regrets are
clipped at :data:`REGRET_FLOOR`, which the axis label says. Figures are built on
:class:`matplotlib.figure.Figure` directly, so no pyplot state is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.aggregate import MethodAggregate, Report, Stat

REGRET_FLOOR = 1e-3
"""Regrets (%-points) below this are drawn at it on the log axes."""
FORMATS: tuple[str, ...] = ("png", "pdf")
PANEL_SIZE = (4.6, 3.6)
DPI = 150


@dataclass(frozen=True)
class FigureSpec:
    """One kind of figure: its file stem, y label and how a panel is drawn."""

    stem: str
    ylabel: str
    xlabel: str
    draw: Callable[[Axes, Report, str, str, dict[str, str]], bool]
    log_x: bool = False
    log_y: bool = False
    note: str = "lines: mean over seeds, bands: \u00b1 1 s.e."


def method_colors(methods: tuple[str, ...]) -> dict[str, str]:
    """One colour per method, fixed by its position in the grid (same in every figure)."""
    palette = [f"C{i}" for i in range(10)] + ["#7f0000", "#004d40", "#4a148c", "#827717", "#263238"]
    return {method: palette[i % len(palette)] for i, method in enumerate(methods)}


HIGHLIGHTED = "tnas"
"""The method of this library, drawn thicker and on top so it is found at a glance."""


def _line_width(method: str) -> float:
    return 2.8 if method == HIGHLIGHTED else 1.5


def _band(ax: Axes, x: np.ndarray, stat: Stat, color: str, label: str, floor: float | None = None) -> None:
    mean, se = stat.mean, stat.se
    low, high = mean - se, mean + se
    if floor is not None:
        mean, low, high = (np.maximum(a, floor) for a in (mean, low, high))
    ax.plot(x, mean, color=color, label=label, linewidth=_line_width(label), zorder=3 if label == HIGHLIGHTED else 2)
    if stat.n > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)


def _aggregates(report: Report, observe: str, dataset: str) -> list[MethodAggregate]:
    return [report.aggregates[(observe, dataset, m)] for m in report.spec.methods
            if (observe, dataset, m) in report.aggregates]  # fmt: skip


def _label(aggregate: MethodAggregate) -> str:
    return aggregate.method


def _returned(aggregate: MethodAggregate) -> Stat:
    """Test accuracy of the cell the method returns (its recommendation, else its incumbent)."""
    return aggregate.recommended if aggregate.recommended is not None else aggregate.test


def _draw_regret_queries(
    ax: Axes, report: Report, observe: str, dataset: str, colors: dict[str, str]
) -> bool:
    drawn = False
    for a in _aggregates(report, observe, dataset):
        _band(ax, np.arange(1, a.budget + 1), a.regret, colors[a.method], _label(a), floor=REGRET_FLOOR)
        drawn = True
    return drawn


def _draw_regret_hours(ax: Axes, report: Report, observe: str, dataset: str, colors: dict[str, str]) -> bool:
    drawn = False
    for a in _aggregates(report, observe, dataset):
        if a.regret_vs_hours is not None and a.hours_grid.size:
            _band(ax, a.hours_grid, a.regret_vs_hours, colors[a.method], _label(a), floor=REGRET_FLOOR)
            drawn = True
    return drawn


TEST_ZOOM_QUERY = 5
"""The test-accuracy axis starts at the lowest mean after this many queries (the first few
queries, far below, would flatten every difference that matters)."""


def _draw_test(ax: Axes, report: Report, observe: str, dataset: str, colors: dict[str, str]) -> bool:
    aggregates = _aggregates(report, observe, dataset)
    for a in aggregates:
        _band(ax, np.arange(1, a.budget + 1), _returned(a), colors[a.method], _label(a))
    if not aggregates:
        return False
    reference = report.references.get(dataset)
    tops = [float(np.nanmax(_returned(a).mean + np.nan_to_num(_returned(a).se))) for a in aggregates]
    if reference is not None:
        ax.axhline(reference.best_test, color="0.4", linestyle=":", linewidth=1,
                   label="best-validation cell")  # fmt: skip
        tops.append(reference.best_test)
    low = min(float(_returned(a).mean[min(TEST_ZOOM_QUERY, a.budget) - 1]) for a in aggregates)
    high = max(tops)
    pad = 0.08 * max(high - low, 0.1)
    ax.set_ylim(low - pad, high + pad)
    return True


def _draw_ranks(ax: Axes, report: Report, observe: str, dataset: str, colors: dict[str, str]) -> bool:
    ranks, seeds = report.ranks.get((observe, dataset), ({}, ()))
    for method, values in ranks.items():
        ax.plot(np.arange(1, values.shape[0] + 1), values, color=colors[method], label=method,
                linewidth=_line_width(method), zorder=3 if method == HIGHLIGHTED else 2)  # fmt: skip
    if ranks:
        ax.set_ylim(len(ranks) + 0.5, 0.5)  # rank 1 on top
        ax.text(0.98, 0.02, f"{len(seeds)} paired seeds", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=8, color="0.3")  # fmt: skip
    return bool(ranks)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("regret-queries", f"validation regret (%, clipped at {REGRET_FLOOR:g})", "queries",
               _draw_regret_queries, log_y=True),
    FigureSpec("regret-gpu-hours", f"validation regret (%, clipped at {REGRET_FLOOR:g})",
               "simulated GPU-hours of training", _draw_regret_hours, log_x=True, log_y=True),
    FigureSpec("test-queries", "test accuracy of the returned cell (%)", "queries", _draw_test),
    FigureSpec("rank-queries", "average rank (1 = best test accuracy)", "queries", _draw_ranks,
               note="rank by the returned cell's test accuracy per seed index, averaged over seeds"),
)  # fmt: skip


def protocol_title(report: Report, observe: str) -> str:
    """One line stating the protocol of a figure."""
    spec = report.spec
    observed = "seed-mean validation" if observe == "mean" else "one training seed's validation per query"
    fidelity = (f"{spec.fidelity}-epoch fidelity" if spec.fidelity == 200 else
                f"{spec.fidelity}-epoch validation observed, 200-epoch test reported")  # fmt: skip
    return (f"NAS-Bench-201 - observe={observe} ({observed}), {fidelity}, "
            f"{len(spec.seeds)} seeds, budget {spec.budget} queries")  # fmt: skip


def plot_figure(report: Report, observe: str, figure: FigureSpec, directory: Path) -> list[Path]:
    """Draw one figure for one observation policy; write it as PNG and PDF.

    Returns:
        The files written (none when no dataset has anything to draw).
    """
    datasets = report.spec.datasets
    colors = method_colors(report.spec.methods)
    fig = Figure(figsize=(PANEL_SIZE[0] * len(datasets), PANEL_SIZE[1] + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    drawn = False
    for ax, dataset in zip(axes, datasets, strict=True):
        ok = figure.draw(ax, report, observe, dataset, colors)
        drawn = drawn or ok
        ax.set_title(dataset)
        ax.set_xlabel(figure.xlabel)
        ax.grid(True, which="major", alpha=0.3)
        if figure.log_y and ok:
            ax.set_yscale("log")
        if figure.log_x and ok:
            ax.set_xscale("log")
        if not ok:
            ax.text(
                0.5, 0.5, "no finished runs", transform=ax.transAxes, ha="center", va="center", color="0.5"
            )
    axes[0].set_ylabel(figure.ylabel)
    if not drawn:
        return []
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 9), frameon=False)
    fig.suptitle(f"{protocol_title(report, observe)}\n{figure.note}", fontsize=10)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    prefix = "" if report.spec.fidelity == 200 else f"f{report.spec.fidelity}-"
    for extension in FORMATS:
        path = directory / f"{prefix}{observe}-{figure.stem}.{extension}"
        fig.savefig(path, dpi=DPI)
        written.append(path)
    return written


def plot_report(report: Report, directory: Path) -> dict[str, list[Path]]:
    """Every figure of every observation policy: ``observe -> PNG files written``."""
    written: dict[str, list[Path]] = {}
    for observe in report.spec.observes:
        for figure in FIGURES:
            files = plot_figure(report, observe, figure, directory)
            written.setdefault(observe, []).extend(p for p in files if p.suffix == ".png")
    return written
