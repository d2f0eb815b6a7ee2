"""The report's story and its files: the few lines a reader needs first (which law, what it says
about shape, what the selection chose and why, who won), summary.md, and the writer of every
report file (those infscale.outputs names). The figures are drawn by infscale.report.figures,
the tables built by infscale.report.tables; matplotlib is imported only to save the figures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from infscale.errors import InputError
from infscale.io import write_csv, write_text
from infscale.outputs import FIGURE_FORMATS, FIGURES, TABLES, report_files
from infscale.report.tables import Table, html_table, loss_band, md_table
from infscale.select.candidates import variables_read
from infscale.select.winner import SMOOTH

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# ---------------------------------------------------------------- the story

# Each shape law's coefficients (whose sign the interval settles or not) and optima.
SHAPE_TERMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "inference": (("epsilon", "gamma"), ()),
    "conditional": (("a1", "a2"), ("x_opt",)),
}
# A budget the selection applied (select_top_k's keyword) -> the column it limits, its name.
BUDGETS: dict[str, tuple[str, str]] = {
    "max_params": ("N", "parameters N"),
    "max_tokens": ("D", "tokens D"),
    "max_latency": ("latency_s", "latency (s)"),
}
UNKNOWN = "n/a"


def story_lines(
    choice_fit: Mapping[str, Any],
    selected: pd.DataFrame,
    winner: Mapping[str, Any],
    budgets: Mapping[str, float | None],
    stability: Mapping[str, Any] | None = None,
    by_objective: pd.DataFrame | None = None,
) -> list[str]:
    """The story, a line each: the law the selection used and why; the shape effect it
    predicts among the feasible candidates, with the fitted shape coefficients and their 95%
    intervals; what the selection chose, which budget excluded which candidates and how often
    each chosen one is chosen over the fit's bootstrap resamples; the winner against the
    baseline.

    ``choice_fit``: the chosen fit (results/fit/chosen.json: a FIT.json with its ``choice``);
    ``selected``: selected.csv; ``winner``: infscale.select.winner.choose_winner's; ``budgets``:
    the budgets the selection applied (BUDGETS keys, None: no limit) and ``stability`` the
    ``resamples`` and ``skipped`` of its selection_frequency, both from
    results/select/budgets.json; ``by_objective``: results/select/objectives.csv, each
    objective's choice (with budgets.json's ``loss_target`` and ``infeasible`` in ``stability``).
    """
    lines = [
        _law_line(choice_fit["choice"]),
        _shape_line(choice_fit, selected),
        _selection_line(selected, budgets, stability, variables_read(choice_fit)),
    ]
    if by_objective is not None and stability is not None:
        lines.append(_objectives_line(by_objective, stability))
    return [*lines, _winner_line(winner)]


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    return format(value, spec)


def _law_line(choice: Mapping[str, Any]) -> str:
    name = choice["law"] + (f" ({choice['form']})" if choice["form"] else "")
    how = "chosen automatically" if choice["mode"] == "auto" else "as configured"
    reason = choice["reason"].strip().rstrip(".")
    return (
        f"Law: the selection used the {name} law ({choice['method']} fit, tie "
        f"{choice['tie']}), {how}: {reason}. Its progressive extrapolation error is "
        f"{_fmt(choice['logo_rel_err'], '.2%')} against Chinchilla's "
        f"{_fmt(choice['chinchilla_logo_rel_err'], '.2%')} (ratio "
        f"{_fmt(choice['ratio_to_chinchilla'], '.2f')}); AIC {_fmt(choice['aic'], '.1f')}."
    )


def _shape(row: pd.Series) -> str:
    return (
        f"{row['name']} ({row['shape']}: d_model {int(row['d_model'])} x "
        f"{int(row['n_layers'])} layers, R {row['R']:.3g})"
    )


def _shape_line(fit: Mapping[str, Any], selected: pd.DataFrame) -> str:
    law = fit["law"]
    lo, hi = loss_band(selected)
    frame = selected.assign(lo=lo, hi=hi)
    feasible = frame[frame["feasible"] == 1].sort_values("loss_pred", kind="stable")
    best, worst = feasible.iloc[0], feasible.iloc[-1]
    if len(feasible) < 2:
        effect = f"one candidate is feasible, {_shape(best)}, predicted at {_band(best)}"
    else:
        diff = worst["loss_pred"] - best["loss_pred"]
        direction = "wider, shallower" if best["R"] > worst["R"] else "narrower, deeper"
        effect = (
            f"the best feasible shape, {_shape(best)}, is predicted at {_band(best)} and the "
            f"worst, {_shape(worst)}, at {_band(worst)}: {diff:.4f} nats/token "
            f"({diff / best['loss_pred']:.2%}) in favour of the {direction} shape"
        )
        if math.isfinite(best["hi"]) and math.isfinite(worst["lo"]):
            overlap = worst["lo"] <= best["hi"]
            effect += f"; the 95% bands {'overlap' if overlap else 'do not overlap'}"
    coefficients, optima = SHAPE_TERMS.get(law, ((), ()))
    if not coefficients:
        terms = f"The {law} law has no shape term: N and D alone set its predictions"
    else:
        terms = "Shape coefficients: " + ", ".join(
            [_coefficient(fit, p, signed=True) for p in coefficients]
            + [_coefficient(fit, p, signed=False) for p in optima if _value(fit, p) is not None]
        )
    return f"Shape effect (the {law} law at the candidates' N and D): {effect}. {terms}."


def _band(row: pd.Series) -> str:
    if not math.isfinite(row["lo"]):
        return f"{row['loss_pred']:.4f}"
    return f"{row['loss_pred']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}]"


def _value(fit: Mapping[str, Any], name: str) -> float | None:
    """A fitted parameter, or a quantity derived from them (the conditional law's optima sit
    beside ``params``)."""
    return fit["params"].get(name, fit.get(name))


def _coefficient(fit: Mapping[str, Any], name: str, *, signed: bool) -> str:
    """``name = value [95% lo, hi]``; for a coefficient, whether the interval settles its sign."""
    text = f"{name} = {_fmt(_value(fit, name), '.4g')}"
    interval = (fit.get("intervals") or {}).get(name)
    if interval is None:
        return text + " (no interval)"
    lo, hi = interval
    text += f" [95%: {lo:.4g}, {hi:.4g}]"
    if signed:
        text += " (excludes 0)" if lo > 0 or hi < 0 else " (includes 0: sign unresolved)"
    return text


def _natural(name: str) -> list[int | str]:
    """Sort key reading digits as numbers: c2 before c10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _budgets_bind(selected: pd.DataFrame) -> str:
    """Whether the budgets changed the choice: do they exclude the lowest predicted loss?"""
    best = selected.loc[selected["loss_pred"].idxmin()]
    loss = f"{best['loss_pred']:.4g}"
    if best["feasible"] == 1:
        return (
            f" The lowest predicted loss of all, {best['name']}'s ({loss}), is within the "
            "budgets, so they did not change the first choice."
        )
    return (
        f" The budgets exclude {best['name']}, the lowest predicted loss of all ({loss}): "
        "without them it would be chosen first."
    )


def _selection_line(
    selected: pd.DataFrame,
    budgets: Mapping[str, float | None],
    stability: Mapping[str, int] | None,
    read: tuple[str, ...],
) -> str:
    chosen = selected[selected["selected"] == 1].sort_values("rank", kind="stable")
    n_feasible = int((selected["feasible"] == 1).sum())
    excluded = []
    for key, (column, label) in BUDGETS.items():
        limit = budgets[key]
        if limit is not None:
            over = sorted(selected.loc[selected[column] > limit, "name"].astype(str), key=_natural)
            shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
            excluded.append(f"{label} <= {shown} excluded {', '.join(over) or 'none'}")
    why = "; ".join(excluded) if excluded else "no budget was set"
    objective = (stability or {}).get("objective", "loss")
    best = "lowest predicted losses" if objective == "loss" else "highest throughputs"
    budgets_bind = _budgets_bind(selected) if excluded else None
    text = (
        f"Selection: chose {', '.join(chosen['name'].astype(str))} (k = {len(chosen)}), the "
        f"{best} among the {n_feasible} of {len(selected)} candidates within "
        f"the budgets ({why})."
    )
    if objective == "loss" and budgets_bind is not None:
        text += budgets_bind
    text += _extrapolated(chosen, read)
    if "chosen_frac" in selected.columns:
        counted = ""
        if stability is not None:
            skipped = stability["skipped"]
            counted = f" ({stability['resamples']} used" + (
                f", {skipped} skipped: a loss not finite and positive)" if skipped else ")"
            )
        shares = ", ".join(
            f"{row['name']} {_fmt(row['chosen_frac'], '.0%')}" for _, row in chosen.iterrows()
        )
        text += f" Share of the fit's bootstrap resamples{counted} that choose each: {shares}."
    else:
        text += " Its stability over the fit's bootstrap resamples was not measured."
    return text


def _extrapolated(chosen: pd.DataFrame, read: tuple[str, ...]) -> str:
    """Which chosen candidates lie beyond the grid in a shape variable the law reads."""
    marks = []
    for _, row in chosen.iterrows():
        outside = row.get("outside_grid")
        beyond = [v for v in outside.split() if v in read] if isinstance(outside, str) else []
        if beyond:
            marks.append(f"{row['name']} (its {', '.join(beyond)})")
    if not marks:
        return ""
    return f" Beyond the grid's range, so extrapolated by the law: {'; '.join(marks)}."


def _objectives_line(by_objective: pd.DataFrame, applied: Mapping[str, Any]) -> str:
    """Each objective's choice, and what the throughput objective's target was."""
    parts = []
    for name, rows in by_objective.groupby("objective", sort=False):
        chosen = rows[rows["selected"] == 1].sort_values("rank", kind="stable")
        picks = ", ".join(
            f"{row['name']} ({_fmt(row['throughput_tps'], '.4g')} tokens/s, loss "
            f"{_fmt(row['loss_pred'], '.4f')})"
            for _, row in chosen.iterrows()
        )
        if name == "throughput":
            target = applied["loss_target"]
            bound = (
                "no loss target"
                if target is None
                else (
                    f"predicted loss <= {target:.4f}"
                    + (", the baseline's" if applied["max_loss"] == "baseline" else "")
                )
            )
            parts.append(f"by throughput ({bound}): {picks}{_throughput_ties(rows)}")
        else:
            parts.append(f"by {name}: {picks}")
    parts += [f"by {name}: none ({why})" for name, why in applied["infeasible"].items()]
    return f"Objectives: {'; '.join(parts)}; trained: the {applied['objective']} objective's."


def _throughput_ties(rows: pd.DataFrame) -> str:
    """Where the throughput objective's choice rested on a tie (infscale.select.objectives: the
    band rule on the measured times), which candidates tied and that predicted loss decided."""
    if "throughput_tier" not in rows.columns:
        return ""
    tiers = rows[rows["feasible"] == 1].groupby("throughput_tier")["name"].agg(list)
    ties = [names for names in tiers if len(names) > 1]
    if not ties:
        return ""
    named = "; ".join(" = ".join(map(str, names)) for names in ties)
    return f" (tied within their timing noise: {named}; the lower predicted loss ranks first)"


def _winner_line(winner: Mapping[str, Any]) -> str:
    others = ", ".join(name for name in winner["contenders"] if name != winner["winner"])
    tie = f"within z = {winner['z']:g} combined standard error"
    why = {
        "accuracy": f"the most accurate, and no other is {tie}",
        SMOOTH: f"tied on accuracy ({tie}) with {others}, and the lowest {SMOOTH} of them",
        "latency": f"tied on accuracy ({tie}) with {others}, and the fastest of them",
        "accuracy, tied on latency": f"tied on accuracy ({tie}) with {others}; the fastest of "
        f"them tie on latency too ({', '.join(winner['latency_tied'])}: the log ratio of their "
        "median times within z combined standard errors), and it is the most accurate of those",
    }[winner["decided_by"]]
    text = (
        f"Winner: {winner['winner']}, average accuracy {winner['accuracy']:.3f} "
        f"(se {_fmt(winner['accuracy_stderr'], '.3f')}) at {winner['latency_s']:.3f} s, {why}. "
    )
    if winner["winner"] == winner["baseline"]:
        return text + "It is the baseline itself."
    text += f"Against the baseline {winner['baseline']}: "
    if winner["speedup"] is None:
        text += "speed-up unknown (its latency was not measured), "
    else:
        text += f"{winner['speedup']:.2f}x its speed ({winner['baseline_latency_s']:.3f} s), "
    if winner["accuracy_diff"] is None:
        return text + "accuracy not compared (the baseline was not trained)."
    band = _fmt(winner["accuracy_diff_band"], ".3f")
    return text + f"accuracy {winner['accuracy_diff']:+.3f} (band {band}): {winner['verdict']}."


def story_rst(table: Table) -> str:
    """The story table as reStructuredText for the HTML report's front page (every character
    that would start inline markup escaped, so no name can break the page)."""

    def escape(text: str) -> str:
        for char in "\\*`_|":
            text = text.replace(char, "\\" + char)
        return text

    lines = [f"- {escape(line)}" for line in table.frame["story"]]
    return f"**{escape(table.title)}**\n\n" + "\n".join(lines) + "\n"


# ---------------------------------------------------------------- summary.md

# summary.md's sections and the tables each shows (story: at the top; predictions: CSV and
# HTML only).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Selection", ("selection", "objectives", "winner")),
    ("Fitted laws", ("coefficients", "fit_sets", "law_comparison")),
    (
        "Latency",
        (
            "latency_model",
            "latency_sweeps",
            "gqa_throughput",
            "throughput_crosscheck",
            "engines",
            "trained_latency",
        ),
    ),
    ("Loss to downstream accuracy", ("downstream",)),
    ("Design rounds", ("design_rounds", "design_vs_grid")),
    ("Runs", ("runs",)),
)


def summary_markdown(
    tables: Mapping[str, Table], figures: Iterable[str], config: Mapping[str, Any]
) -> str:
    """summary.md: the story first (a bullet per line), then the evidence (a section per
    topic), the figures (``figures``: names under figures/ beside summary.md), provenance and
    the config."""
    story = "\n".join(f"- {line}" for line in tables["story"].frame["story"])
    parts = ["# infscale report", story]
    for heading, names in SECTIONS:
        parts.append(f"## {heading}")
        for name in names:
            table = tables[name]
            parts.append(f"### {table.title}")
            if table.note:
                parts.append(table.note)
            parts.append(md_table(table))
    parts.append("## Figures")
    parts.append(
        "\n\n".join(
            f"![{name}](figures/{name}.png)  \n"
            + " · ".join(f"[{name}.{ext}](figures/{name}.{ext})" for ext in FIGURE_FORMATS)
            for name in figures
        )
    )
    provenance = tables["provenance"]
    parts += ["## Provenance", provenance.note, md_table(provenance)]
    parts += ["### Config", "```yaml\n" + yaml.safe_dump(dict(config), sort_keys=True) + "```"]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- writing


def write_report(
    out_dir: str | Path,
    figures: Mapping[str, Figure],
    tables: Mapping[str, Table],
    markdown: str,
) -> list[Path]:
    """Write every figure (PNG and SVG), every table (CSV and HTML), the story as
    reStructuredText, then summary.md (last, so its presence means the rest is there); each
    file atomically. The names must be exactly FIGURES and TABLES, so the files are what the
    workflow declares. Returns the paths."""
    from infscale.report.figures import save_figure

    for kind, given, expected in (("figures", figures, FIGURES), ("tables", tables, TABLES)):
        if set(given) != set(expected):
            raise InputError(
                f"report {kind} {sorted(given)} are not the declared {sorted(expected)}"
            )
    files = report_files(out_dir)
    written = [
        save_figure(fig, files[f"{name}_{fmt}"])
        for name, fig in figures.items()
        for fmt in FIGURE_FORMATS
    ]
    for name, table in tables.items():
        written.append(write_csv(files[f"{name}_csv"], table.frame))
        written.append(write_text(files[f"{name}_html"], html_table(table)))
    written.append(write_text(files["story_rst"], story_rst(tables["story"])))
    return [*written, write_text(files["summary"], markdown)]
