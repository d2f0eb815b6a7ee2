"""The report's design section (config ``design``): which runs each round added and why (their
expected gain), how settled the top-k choice was round by round, and the adaptive run beside a
finished full-grid run. Everything here was decided by the design rounds and the selection; these
functions only lay it out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from infscale.fit.core import PARAMS
from infscale.report.tables import Table

ROUND_COLUMNS = [
    "round",
    "runs_added",
    "flops",
    "cum_flops",
    "cum_flops_vs_grid",
    "uncertainty_before_bits",
    "modal_set",
    "modal_share",
    "uncertainty_after_bits",
]


def rounds_table(
    seed_runs: Sequence[str],
    rounds: Sequence[tuple[pd.DataFrame, Mapping[str, Any]]],
    run_flops: Mapping[str, float],
    grid_flops: float,
    selected: pd.DataFrame,
) -> Table:
    """One row per round: round 0 the seed runs, then each design round's runs with their
    expected gain (bits), what they cost, and the top-k choice before them (entropy of the chosen
    set over the resamples of the fit of every earlier round, its modal set and that set's share)
    and expected after. ``rounds``: each round's table and summary (results/design/round_<r>.*);
    ``run_flops``: each proposal's training FLOPs and ``grid_flops`` the whole grid's (6·N·D at
    the configured multipliers, as the design counts them); ``selected``: the final selection."""
    title = "Design rounds: the runs each round added and why"
    if not seed_runs:
        return Table(
            title,
            pd.DataFrame({column: [] for column in ROUND_COLUMNS}),
            note="This run trained the whole grid (design.enabled: false).",
        )
    spent = sum(run_flops[name] for name in seed_runs)
    rows = [
        {
            "round": 0,
            "runs_added": ", ".join(seed_runs) + " (the seed grid)",
            "flops": spent,
            "cum_flops": spent,
            "cum_flops_vs_grid": spent / grid_flops,
        }
    ]
    for table, summary in rounds:
        added = ", ".join(
            f"{n} (+{g:.3f} bits)" for n, g in zip(table["name"], table["gain"], strict=True)
        )
        flops = float(table["flops"].sum())
        spent += flops
        rows.append(
            {
                "round": summary["round"],
                "runs_added": added or summary["note"],
                "flops": flops,
                "cum_flops": spent,
                "cum_flops_vs_grid": spent / grid_flops,
                "uncertainty_before_bits": summary.get("uncertainty_before"),
                "modal_set": " + ".join(summary.get("modal_set", [])),
                "modal_share": summary.get("modal_share"),
                "uncertainty_after_bits": (
                    float(table["uncertainty_after"].iloc[-1]) if len(table) else None
                ),
            }
        )
    final = _selection(selected, "{name} in {frac:.0%}")
    return Table(
        title,
        pd.DataFrame(rows, columns=ROUND_COLUMNS),
        {
            "flops": ".3g",
            "cum_flops": ".3g",
            "cum_flops_vs_grid": ".0%",
            "uncertainty_before_bits": ".3f",
            "modal_share": ".0%",
            "uncertainty_after_bits": ".3f",
        },
        note="Each round's uncertainty is the entropy (bits) of the top-k set over the bootstrap "
        "resamples of a fit of every earlier round's runs (0: every resample picks the same "
        "set); a run's gain is how much it was expected to shrink it, and 'after' the "
        "expected entropy once the round's runs are in. After the last round, the selection "
        f"(fit of every round's runs): {final} of its resamples.",
    )


def _selection(selected: pd.DataFrame, form: str) -> str:
    """The selected candidates in rank order, each with the share of bootstrap resamples that
    choose it (``form`` with name and frac), or "(no resamples)" where the fit had none."""
    chosen = selected[selected["selected"] == 1].sort_values("rank")
    if "chosen_frac" not in chosen:
        return ", ".join(chosen["name"]) + " (no resamples)"
    return ", ".join(
        form.format(name=name, frac=frac)
        for name, frac in zip(chosen["name"], chosen["chosen_frac"], strict=True)
    )


def _summary(
    points: pd.DataFrame,
    fit: Mapping[str, Any],
    selected: pd.DataFrame,
    winner: Mapping,
    flops: Mapping[str, float],
) -> dict[str, str]:
    runs = sorted(points["run"].unique())
    rows = {
        "runs trained (law)": f"{len(runs)}",
        "training FLOPs (law)": f"{flops['grid']:.3g}",
        "law": f"{fit['law']} (tie {fit['tie']}, {fit['method']}, {fit['n_points']} points)",
    }
    intervals = fit.get("intervals") or {}
    for name in PARAMS[fit["law"]]:
        lo, hi = intervals.get(name, (None, None))
        band = f" [{lo:.4g}, {hi:.4g}]" if lo is not None else ""
        rows[name] = f"{fit['params'][name]:.4g}{band}"
    rows["selected (share of resamples)"] = _selection(selected, "{name} ({frac:.0%})")
    rows["winner"] = f"{winner['winner']} ({winner['verdict']})"
    return rows


def comparison_table(
    adaptive: Mapping[str, Any], reference: Mapping[str, Any] | None, reference_dir: str | None
) -> Table:
    """The adaptive run beside a finished full-grid run (design.reference): runs and FLOPs the
    law was fitted on, the selection law's coefficients with their 95% intervals, the selection
    with each chosen candidate's share of resamples, and the winner. Each argument: ``points``,
    ``fit`` (results/fit/chosen.json), ``selected``, ``winner``, ``flops`` (the select stage's
    training_flops.json)."""
    title = "The adaptive run beside the full grid"
    mine = _summary(**adaptive)
    if reference is None:
        return Table(
            title,
            pd.DataFrame({"quantity": list(mine), "this run": list(mine.values())}),
            note="No full-grid run to compare with (design.reference: the directory of a "
            "finished run of the same config with design.enabled false).",
        )
    theirs = _summary(**reference)
    quantities = list(dict.fromkeys([*mine, *theirs]))
    return Table(
        title,
        pd.DataFrame(
            {
                "quantity": quantities,
                "this run": [mine.get(q, "") for q in quantities],
                "full grid": [theirs.get(q, "") for q in quantities],
            }
        ),
        note=f"The full grid's figures are read from the finished run in {reference_dir}.",
    )
