"""The results page (``benchmarks/RESULTS.md``) of a NAS-Bench-201 benchmark grid.

:func:`render_page` turns a :class:`~benchmarks.aggregate.Report` into Markdown: the
protocol (tasks, fidelity, observation policies, seeds, budget, TNAS meta-training
exclusions read from the runs' ``config.json``, method settings, package versions from
``summary.json``), the runs missing from the grid, one headline table per observation
policy, the figures, the NAS-Bench-201 paper's reference figures and the commands that
regenerate the page. Nothing on the page depends on when it was generated, so
regenerating it from the same runs gives the same text.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.aggregate import GridSpec, MethodAggregate, Report, RunData, Stat, ToBest, checkpoints
from benchmarks.plots import REGRET_FLOOR, protocol_title
from tnas.errors import TnasError
from tnas.io import atomic_write_text
from tnas.oracles import TASKS
from tnas.search.config import OBSERVATION_POLICIES, RunConfig
from tnas.search.methods import command_config, stale_settings


@dataclass(frozen=True)
class PaperReference:
    """A fixed-budget result of the NAS-Bench-201 paper (Dong & Yang, ICLR 2020): test
    accuracy (%) of the architecture found, per dataset."""

    method: str
    cifar10: float
    cifar100: float
    imagenet16_120: float


PAPER_REFERENCES: tuple[PaperReference, ...] = (
    PaperReference("REA (regularized evolution)", 93.92, 71.84, 45.54),
    PaperReference("RS (random search)", 93.70, 71.04, 44.57),
)
PAPER_NOTE = (
    "Their protocol differs from ours: each search ran under a fixed budget of simulated "
    "training *time* (not a number of queries), with the paper's own seeds and number of "
    "runs, so these figures are a sanity check of scale, not a like-for-like comparison."
)


@dataclass(frozen=True)
class PageInputs:
    """What the page shows besides the aggregates.

    Attributes:
        command: the command that runs the (missing part of the) grid and regenerates the page.
        report_command: the same with ``--report-only`` (no run is started).
        figures: observe -> PNG files of its figures.
        page_path: where the page is written (figure links are relative to its folder).
        table_source: the NAS-Bench-201 table file the runs looked cells up in.
    """

    command: str
    report_command: str
    figures: dict[str, list[Path]]
    page_path: Path
    table_source: str


def format_stat(mean: float, se: float, digits: int = 2) -> str:
    """``mean ± se`` (``± n/a`` when the standard error is undefined, one seed)."""
    error = "n/a" if math.isnan(se) else f"{se:.{digits}f}"
    return f"{mean:.{digits}f} \u00b1 {error}"


def format_queries(value: float, budget: int) -> str:
    """A number of queries, ``>budget`` for "never within the budget"."""
    return f">{budget}" if math.isinf(value) else f"{value:g}"


def format_to_best(to_best: ToBest, budget: int) -> str:
    """``median M, max X (k/n)`` of the queries to the best-validation cell."""
    return (f"median {format_queries(to_best.median, budget)}, max {format_queries(to_best.max, budget)} "
            f"({to_best.reached}/{to_best.n})")  # fmt: skip


def _at(stat: Stat, query: int) -> tuple[float, float]:
    return float(stat.mean[query - 1]), float(stat.se[query - 1])


def _returned(aggregate: MethodAggregate) -> Stat:
    """The test accuracy of what the method returns (its recommendation; else its incumbent)."""
    return aggregate.recommended if aggregate.recommended is not None else aggregate.test


def headline_cell(aggregate: MethodAggregate, requested_seeds: int) -> str:
    """One method on one dataset: test accuracy at the checkpoints (returned cell, and the
    incumbent where they differ), queries to best, overhead."""
    lines = []
    for q in checkpoints(aggregate.budget):
        returned, incumbent = _at(_returned(aggregate), q), _at(aggregate.test, q)
        text = f"@{q}: {format_stat(*returned)}"
        lines.append(text if returned == incumbent else f"{text} (incumbent {format_stat(*incumbent)})")
    lines.append(f"to best: {format_to_best(aggregate.to_best, aggregate.budget)}")
    lines.append(
        f"overhead: {format_stat(float(aggregate.overhead_s.mean), float(aggregate.overhead_s.se))} s"
    )
    if len(aggregate.seeds) < requested_seeds:
        lines.append(f"**{len(aggregate.seeds)} of {requested_seeds} seeds**")
    return "<br>".join(lines)


def headline_table(report: Report, observe: str) -> str:
    """Rows: methods; columns: datasets; cells: :func:`headline_cell`."""
    spec = report.spec
    header = ["method", *spec.datasets]
    rows = [header, ["---"] * len(header)]
    for method in spec.methods:
        row = [f"`{method}`"]
        for dataset in spec.datasets:
            aggregate = report.aggregates.get((observe, dataset, method))
            row.append(headline_cell(aggregate, len(spec.seeds)) if aggregate else "no finished run")
        rows.append(row)
    best = ["best-validation cell (table)"]
    for dataset in spec.datasets:
        ref = report.references[dataset]
        best.append(
            f"test {ref.best_test:.2f} (valid {ref.best_valid:.2f}, "
            f"cell {', '.join(map(str, ref.best_indices))})"
        )
    rows.append(best)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def glance_table(report: Report, observe: str) -> str:
    """At a glance: test accuracy after the budget (best mean per dataset, among the methods with
    every seed finished, in bold) and queries to best."""
    spec = report.spec
    header = ["method", *(f"{dataset} @{spec.budget}" for dataset in spec.datasets), "seeds"]
    rows = [header, ["---"] * len(header)]
    full = len(spec.seeds)  # a method with fewer finished seeds is shown but not put in bold
    best_mean = {
        dataset: max((float(_returned(a).mean[-1]) for (o, d, _), a in report.aggregates.items()
                      if o == observe and d == dataset and len(a.seeds) == full), default=math.nan)
        for dataset in spec.datasets
    }
    for method in spec.methods:
        row, seeds = [f"`{method}`"], set()
        for dataset in spec.datasets:
            aggregate = report.aggregates.get((observe, dataset, method))
            if aggregate is None:
                row.append("-")
                continue
            seeds.add(len(aggregate.seeds))
            mean, se = _at(_returned(aggregate), aggregate.budget)
            text = format_stat(mean, se)
            text = f"**{text}**" if mean == best_mean[dataset] and len(aggregate.seeds) == full else text
            to_best = aggregate.to_best
            row.append(f"{text} (best cell: {format_queries(to_best.median, aggregate.budget)}, "
                       f"{to_best.reached}/{to_best.n})")  # fmt: skip
        row.append("/".join(str(n) for n in sorted(seeds)) or "0")
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def surrogate_spread_table(report: Report, observe: str) -> str | None:
    """Per TNAS-family method and dataset, the spread over the default surrogates: the best,
    median and worst surrogate by median queries to the best cell (ties: by test at 10)."""
    spec = report.spec
    rows = [["method", *spec.datasets], ["---"] * (len(spec.datasets) + 1)]
    for method in spec.methods:
        row, found = [f"`{method}`"], False
        for dataset in spec.datasets:
            aggregate = report.aggregates.get((observe, dataset, method))
            if aggregate is None or len(aggregate.by_surrogate) < 2:
                row.append("-")
                continue
            found = True
            at10 = min(10, aggregate.budget)
            order = sorted(aggregate.by_surrogate.items(),
                           key=lambda item: (item[1][0].median, -float(item[1][1].mean[at10 - 1])))  # fmt: skip
            picks = {"best": order[0], "median": order[(len(order) - 1) // 2], "worst": order[-1]}
            parts = []
            for name, (seed, (to_best, test)) in picks.items():
                parts.append(f"{name}: #{seed} {format_queries(to_best.median, aggregate.budget)} "
                             f"({to_best.reached}/{to_best.n}), @{at10} {float(test.mean[at10 - 1]):.2f}, "
                             f"@{aggregate.budget} {float(test.mean[-1]):.2f}")  # fmt: skip
            row.append("<br>".join(parts))
        if found:
            rows.append(row)
    if len(rows) == 2:
        return None
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _tnas_exclusions(report: Report) -> list[str]:
    lines = []
    for (observe, dataset, method), runs in sorted(report.runs.items()):
        if method != "tnas":
            continue
        seen: dict[str, list[int]] = {}
        for run in runs:
            surrogate = run.config.get("surrogate") or {}
            exclude = surrogate.get("exclude")
            text = "not recorded" if exclude is None else (
                f"meta-trained without {', '.join(exclude) or 'nothing'} "
                f"(surrogate: {surrogate.get('origin', '?')}"
                f"{'; TARGET SEEN IN META-TRAINING' if surrogate.get('target_in_meta_train') else ''})"
            )  # fmt: skip
            seen.setdefault(text, []).append(run.seed)
        for text, seeds in seen.items():
            lines.append(f"- `{dataset}` (observe={observe}, seeds {_seed_list(seeds)}): {text}")
    return lines


#: Options that a run's seed sets (TNAS: which surrogate, which image sample), listed once
#: in the protocol instead of once per run.
PER_RUN_OPTIONS = ("surrogate_seed", "sample_seed")


def _method_settings(report: Report) -> list[str]:
    settings: dict[str, set[str]] = {}
    for (_, _, method), runs in report.runs.items():
        for run in runs:
            options = (run.config.get("config") or {}).get("options", {})
            record = {"method_settings": run.config.get("method_settings", {}),
                      "options": {k: v for k, v in options.items() if k not in PER_RUN_OPTIONS}}  # fmt: skip
            settings.setdefault(method, set()).add(json.dumps(record, sort_keys=True))
    lines = []
    for method in report.spec.methods:
        for text in sorted(settings.get(method, ())):
            lines.append(f"- `{method}`: `{text}`")
    return lines


def _versions(report: Report) -> list[str]:
    values: dict[str, set[str]] = {}
    for runs in report.runs.values():
        for run in runs:
            for package, version in run.versions.items():
                values.setdefault(package, set()).add(str(version))
    lines = []
    for package, versions in values.items():
        note = " (differs across runs)" if len(versions) > 1 else ""
        lines.append(f"- {package} {', '.join(sorted(versions))}{note}")
    return lines


def _seed_list(seeds: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(seeds))


def missing_lines(report: Report) -> list[str]:
    """One ``missing: ...`` line per (observe, dataset, method) lacking finished seeds."""
    total = len(report.spec.seeds)
    return [
        f"- missing: observe={m.observe} dataset={m.dataset} method={m.method} "
        f"seeds {_seed_list(m.seeds)} ({len(m.seeds)} of {total})"
        + (": their run directories hold runs of other settings (options, workers), not reported" if m.other else "")
        for m in report.missing
    ]


def stale_lines(report: Report) -> list[str]:
    """One ``stale: ...`` line per (observe, dataset, method, changes) whose finished runs this
    code would search differently (:func:`tnas.search.methods.stale_settings`): their figures
    are on the page, but the grid command runs them anew."""
    lines: list[str] = []
    for (observe, dataset, method), runs in sorted(report.runs.items()):
        lines += stale_run_lines(f"observe={observe} dataset={dataset} method={method}", runs, _recorded_config)
    return lines


def stale_run_lines(label: str, runs: Iterable[RunData], config_of: Callable[[RunData], RunConfig | None]) -> list[str]:
    """``- stale: <label> seeds ...: <changes>`` per set of changes, for the ``runs`` this code
    would search with other settings than their record's (:func:`tnas.search.methods.stale_settings`
    against ``config_of(run)``, the configuration the grid would run; ``None``: not judged)."""
    groups: dict[str, list[int]] = {}
    for run in runs:
        config = config_of(run)
        changes = stale_settings(config, run.config) if config is not None else []
        if changes:
            groups.setdefault("; ".join(changes), []).append(run.seed)
    return [f"- stale: {label} seeds {_seed_list(seeds)}: {changes}" for changes, seeds in sorted(groups.items())]


def _recorded_config(run: RunData) -> RunConfig | None:
    """The configuration of the command that makes the run now (its own, less the options
    that restated a default: :func:`tnas.search.methods.command_config`), as the grid command
    judges it; ``None`` when its record holds none (not judged, as the grid does not)."""
    try:
        return command_config(RunConfig(**run.config["config"]), run.config.get("method_settings"))
    except (KeyError, TypeError, TnasError):
        return None


def _link(path: Path, page_path: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(page_path).resolve().parent)).as_posix()


def _task_description(dataset: str, spec: GridSpec) -> str:
    """``name``: what it observes and reports (a table of your own: its file)."""
    own = dict(spec.tables).get(dataset)
    if own is not None:
        return f"`{dataset}`: a table of your own (`{Path(own).name}`)"
    return f"`{dataset}`: {TASKS[dataset].description}" if dataset in TASKS else f"`{dataset}`"


def render_page(report: Report, inputs: PageInputs) -> str:
    """The whole results page as Markdown."""
    spec = report.spec
    observed = {name: OBSERVATION_POLICIES[name] for name in spec.observes if name in OBSERVATION_POLICIES}
    title = "# NAS-Bench-201 benchmark results" + ("" if spec.fidelity == 200 else
                                                   f" at {spec.fidelity} epochs (200-epoch test reported)")
    out: list[str] = [
        title,
        "",
        "Generated by `benchmarks/nb201.py` from the run directories; do not edit by hand. Regenerate with",
        "",
        "```",
        inputs.command,
        "```",
        "",
        "(finished runs are skipped, interrupted ones resumed), or only the page and figures with",
        "",
        "```",
        inputs.report_command,
        "```",
        "",
        "## Protocol",
        "",
        f"- **Benchmark**: the NAS-Bench-201 table (`{inputs.table_source}`), 15,625 cells; a query looks "
        "one cell up (no training), and costs the cell's recorded training time in simulated GPU-seconds.",
        (f"- **Fidelity**: results after {spec.fidelity} training epochs." if spec.fidelity == 200 else
         f"- **Fidelity**: the methods observe the validation accuracy after {spec.fidelity} training epochs "
         f"(a query costs {spec.fidelity}/200 of the 200-epoch training time); the tables and figures report "
         "the **200-epoch test accuracy** of the returned cell, as NATS-Bench's black-box protocol does "
         "(search cheaply, deploy fully). Regret and queries to best refer to the best "
         f"{spec.fidelity}-epoch validation accuracy, what the search can see."),
        "- **Tasks**: "
        + "; ".join(_task_description(dataset, spec) for dataset in spec.datasets)
        + ".",
        "- **Observation policies**: " + "; ".join(f"`{k}`: {v}" for k, v in observed.items()) + ".",
        f"- **Seeds**: {len(spec.seeds)} per (method, dataset, policy): {_seed_list(spec.seeds)}. "
        f"**Budget**: {spec.budget} queries (distinct cells) per run.",
        "- **Returned cell**: what the method would return after q queries, and whose test accuracy the "
        "glance tables, the test figures and the ranks quote. It is the **incumbent** (the cell with the "
        "best *observed* validation accuracy) except for model-based methods (`tnas`, `tnas-nodata`, "
        "`tnas-untrained`, `gp`, `bananas`) under `observe=seed`, which return the evaluated cell of best "
        "posterior (ensemble) mean: with one noisy seed per query the best observed value is the luckiest "
        "reading. The detailed tables give the incumbent too where it differs.",
        f"- **Surrogates**: TNAS and its meta-trained ablations cycle through {spec.surrogates} independently "
        f"meta-trained default surrogates per target (run seed s uses surrogate s % {spec.surrogates}, made "
        "by `python -m benchmarks.meta_train`), and draw the target's image sample with the run seed: the "
        "seeds reach every random source (the runs' options `surrogate_seed` and `sample_seed`, left out "
        "of the settings below). Each surrogate was meta-trained without the target; it is an ensemble of "
        "`members` meta-training runs (default 2; a `members` option below changes it).",
        "- **Validation regret**: best seed-mean validation accuracy in the table minus the incumbent's "
        "seed-mean validation accuracy (looked up in the table, also under `observe=seed`), in %-points. "
        f"On log axes, regrets below {REGRET_FLOOR:g} (including 0, the best cell found) are drawn at "
        f"{REGRET_FLOOR:g}.",
        "- **Queries to best**: first query at which the incumbent is the cell of best seed-mean validation "
        "accuracy; median and max over seeds (`>budget`: not reached within the budget) and k/n seeds that "
        "reached it.",
        "- **Overhead**: seconds spent inside the optimizer's ask/tell over the whole run (not simulated "
        "training time).",
        "- **Statistics**: mean \u00b1 standard error over seeds (sample std with ddof=1 / sqrt(n); "
        "`n/a` for a single seed). Ranks: at every query, methods ranked by returned test accuracy per seed "
        "index (1 = best, ties averaged), averaged over the seeds every method finished.",
        "",
        "### TNAS meta-training exclusions",
        "",
        *(_tnas_exclusions(report) or ["- no finished TNAS run in this grid."]),
        "",
        "### Method settings (from the runs' `config.json`)",
        "",
        *(_method_settings(report) or ["- no finished run."]),
        "",
        "### Package versions (from the runs' `summary.json`)",
        "",
        *(_versions(report) or ["- no finished run."]),
        "",
        "## Missing runs",
        "",
        *(missing_lines(report) or [f"None: every grid cell has its {len(spec.seeds)} finished seeds."]),
        "",
        "## Runs searched with other settings",
        "",
        "Finished runs that this version of tnas would search differently (a default changed since, "
        "`setting: then -> now`); their figures are on this page, and the grid command moves them aside "
        "and runs them anew.",
        "",
        *(stale_lines(report) or ["None: every run was searched with this version's settings."]),
        "",
    ]
    for observe in spec.observes:
        out += [
            f"## Results: observe={observe}",
            "",
            protocol_title(report, observe) + ".",
            "",
            f"At a glance: test accuracy (%) of the returned cell after {spec.budget} queries, mean \u00b1 s.e. "
            "(best mean among the methods with every seed finished in bold), with the median queries to the best-validation cell and how many "
            "seeds reached it; last column: seeds finished.",
            "",
            glance_table(report, observe),
            "",
            "In detail: test accuracy (%) of the returned cell after @q queries (and of the incumbent where "
            "it differs), queries to the best-validation cell, optimizer overhead per run.",
            "",
            headline_table(report, observe),
            "",
        ]
        spread = surrogate_spread_table(report, observe)
        if spread is not None:
            out += [
                "Spread across the meta-trained surrogates: for each surrogate, the median queries to the "
                "best-validation cell over the runs that used it (how many reached it) and the mean returned "
                "test accuracy at 10 queries and at the budget; shown for the best, the median and the worst "
                "surrogate (#: surrogate seed).",
                "",
                spread,
                "",
            ]
        for png in inputs.figures.get(observe, []):
            out += [f"![{png.stem}]({_link(png, inputs.page_path)})", ""]
        if not inputs.figures.get(observe):
            out += ["No figure: no finished run.", ""]
    parallel = Path("benchmarks/RESULTS-parallel.md")
    out += [
        "## Parallel search",
        "",
        f"TNAS, RE and RS with 1, 4 and 16 workers against simulated wall-clock: [{parallel.name}]"
        f"({_link(parallel, inputs.page_path)}) (`python -m benchmarks.parallel report`).",
        "",
        "## Reference: the NAS-Bench-201 paper",
        "",
        "Test accuracy (%) of the architecture found by the paper's fixed-budget searches (Dong & Yang, "
        "NAS-Bench-201, ICLR 2020):",
        "",
        "| method | cifar10 | cifar100 | imagenet16-120 |",
        "| --- | --- | --- | --- |",
        *(
            f"| {r.method} | {r.cifar10:.2f} | {r.cifar100:.2f} | {r.imagenet16_120:.2f} |"
            for r in PAPER_REFERENCES
        ),
        "",
        PAPER_NOTE,
        "",
    ]
    return "\n".join(out)


def write_page(report: Report, inputs: PageInputs) -> Path:
    """Render the page and write it atomically to ``inputs.page_path``."""
    atomic_write_text(inputs.page_path, render_page(report, inputs))
    return inputs.page_path
