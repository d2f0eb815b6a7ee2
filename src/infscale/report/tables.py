"""The report's tables: the result tables assembled from a run's files, and the tables a
reader is shown (each a raw frame, written as CSV, with how to show it in summary.md and HTML).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from infscale.fit.core import PARAMS, TIED, free_params
from infscale.fit.predictions import FitKey
from infscale.select.candidates import variables_read
from infscale.select.models import FLOP_PARTS, trained_candidates
from infscale.select.winner import SMOOTH

MISSING = "-"


@dataclass(frozen=True)
class Table:
    """A report table: raw values (``frame``, written as CSV), how to show them (``formats``:
    column -> format spec, or "yes/no" for 0/1 flags; other floats get 4 significant digits)
    and a note said above it (in summary.md and the HTML table)."""

    title: str
    frame: pd.DataFrame
    formats: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    def display(self) -> pd.DataFrame:
        """Every cell as the string shown to a reader."""
        return pd.DataFrame(
            {
                column: [_cell(v, self.formats.get(column)) for v in self.frame[column]]
                for column in self.frame.columns
            },
            columns=self.frame.columns,
        )


def _cell(value: Any, spec: str | None) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if spec == "yes/no" or isinstance(value, bool | np.bool_):
        return "yes" if bool(value) else "no"
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    return str(value)


def md_table(table: Table) -> str:
    """A GitHub-flavoured table. Not ``DataFrame.to_markdown``: tabulate is absent from the
    report stage's conda env (envs/report.yaml)."""
    shown = table.display()
    header = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in shown.columns) + "|"
    rows = [
        "| " + " | ".join(v.replace("|", "\\|") for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


HTML_STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:1em}"
    "table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid #ddd;"
    "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
)


def html_table(table: Table) -> str:
    """A small self-contained HTML page of the table, as the Snakemake report shows it."""
    body = table.display().to_html(index=False, border=0, escape=True)
    note = f"<p>{html.escape(table.note)}</p>" if table.note else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(table.title)}</title><style>{HTML_STYLE}</style></head>"
        f"<body><h3>{html.escape(table.title)}</h3>{note}\n{body}\n</body></html>\n"
    )


# ---------------------------------------------------------------- assembling the results


def compute_spent(benchmarks: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Wall-clock and CPU seconds summed over Snakemake's per-job benchmark files ({path:
    table}; every row counts: a benchmark repeated k times has k rows)."""
    frames = list(benchmarks.values())
    return {
        "jobs": len(frames),
        "wall_s": float(sum(f["s"].sum() for f in frames)),
        "cpu_s": float(sum(f["cpu_time"].sum() for f in frames)),
    }


# ---------------------------------------------------------------- the tables


def runs_table(points: pd.DataFrame, trained_points: pd.DataFrame, models: pd.DataFrame) -> Table:
    """Every loss point of every run (grid, then trained candidates). Accuracy belongs to the
    run's last boundary (the evaluated model), so earlier boundaries show none."""
    runs = pd.concat([points, trained_points], ignore_index=True)
    runs = runs.merge(models[["run", "latency_s", "average"]], on="run", how="left")
    last = runs.groupby("run")["D"].transform("max") == runs["D"]
    frame = pd.DataFrame(
        {
            "run": runs["run"],
            "shape": runs["shape"],
            "N": runs["N"],
            "D": runs["D"],
            "R": runs["R"],
            "loss": runs["loss"],
            "val_loss": runs["val_loss"],
            "latency_s": runs["latency_s"],
            "accuracy": runs["average"].where(last),
        }
    )
    return Table(
        "Every run: one row per loss point (multiplier boundary)",
        frame,
        {
            "N": ",.0f",
            "D": ",.0f",
            "loss": ".4f",
            "val_loss": ".4f",
            "latency_s": ".3f",
            "accuracy": ".3f",
        },
        "loss: the paper's metric (mean of the EMA of the training loss up to the boundary); "
        "val_loss: held-out loss at the boundary; latency: the shape's median generation "
        "latency; accuracy: the evaluated model's (each run's last boundary) average zero-shot "
        "accuracy.",
    )


def coefficients_table(fits: Mapping[FitKey, dict[str, Any]]) -> Table:
    """Each fit's coefficients with their bootstrap 95% intervals (where the fit has them)."""
    rows = []
    for (law, fit_set), fit in fits.items():
        intervals = fit.get("intervals") or {}
        tied = TIED[fit["tie"]]
        for name in PARAMS[law]:
            lo, hi = intervals.get(name, (None, None))
            rows.append(
                {
                    "law": law,
                    "fit_set": fit_set,
                    "method": fit["method"],
                    "tie": fit["tie"],
                    "n_points": fit["n_points"],
                    "parameter": name,
                    "value": fit["params"][name],
                    "ci95_lo": lo,
                    "ci95_hi": hi,
                    "tied_to": "alpha" if name in tied else None,
                    "resamples": (fit.get("bootstrap") or {}).get("k"),
                }
            )
    warnings = [
        f"{law} / {fit_set}: {text}"
        for (law, fit_set), fit in fits.items()
        for text in fit.get("warnings", [])
    ]
    return Table(
        "Fitted coefficients with bootstrap 95% intervals",
        pd.DataFrame(rows),
        {"value": ".4g", "ci95_lo": ".4g", "ci95_hi": ".4g"},
        "Chinchilla: L = E + A·N^-alpha + B·D^-beta; inference-efficient: the same times "
        "(1 + epsilon·R^gamma). Intervals: 2.5th and 97.5th percentiles over bootstrap "
        "resamples of whole runs (a run's loss points drawn together). "
        + ("Fit warnings: " + "; ".join(warnings) if warnings else "No fit warnings."),
    )


def fit_sets_table(scores: pd.DataFrame) -> Table:
    """The fit-set ablation (paper Figs 8-10, results/fit/fit_sets.csv): each law fitted on
    each set, scored on its own points and on every point (grid and trained candidates)."""
    return Table(
        "Fit-set ablation: each law on each fit set, tested on every point",
        scores,
        {"test_max_rel_err": ".2%", "candidates_max_rel_err": ".2%"},
        "fit_*: on the fit's own points; test_*: on every grid point and the trained "
        "candidates; spearman: mean of the within-size-group rank correlations of predicted "
        "with actual loss; candidates_*: on the trained candidates only (the largest "
        "extrapolation).",
    )


def comparison_table(comparison: pd.DataFrame, fits: Mapping[FitKey, dict[str, Any]]) -> Table:
    """The law comparison (results/fit/comparison.csv, infscale.fit.compare), with the bootstrap
    intervals of the free coefficients where a fit of that law, tie and method on all the same
    points has them."""
    frame = comparison.copy()
    frame.insert(frame.columns.get_loc("aic") + 1, "delta_aic", frame.pop("delta_aic"))
    frame["ci95"] = [_intervals_text(row, fits) for row in comparison.to_dict(orient="records")]
    if "params" in frame.columns:  # the fitted coefficients, last: the longest cells
        frame = frame[[c for c in frame.columns if c != "params"] + ["params"]]
    return Table(
        "Law comparison: ways to put shape into the law, on the same points",
        frame,
        {"logo_rel_err": ".2%", "logo_max_rel_err": ".2%", "aic": ".2f", "delta_aic": ".2f"},
        "Fitted on every grid point (infscale compare; the additive variants are laws of their "
        "own). aic = n·ln(RSS/n) + 2k, delta_aic against the best row of the same method; "
        "logo_*: progressive extrapolation (fit on the smaller size groups, predict the next "
        "larger), mean and max relative error; ci95: bootstrap "
        "intervals of the free coefficients where the workflow's fits match the row.",
    )


def _intervals_text(row: Mapping[str, Any], fits: Mapping[FitKey, dict[str, Any]]) -> str | None:
    for (law, _), fit in fits.items():
        matches = (
            law == row["law"]
            and fit["tie"] == row["tie"]
            and fit["method"] == row["method"]
            and fit["n_points"] == row["n_fit"]
            and fit.get("intervals")
        )
        if matches:
            return "; ".join(
                f"{p} [{fit['intervals'][p][0]:.3g}, {fit['intervals'][p][1]:.3g}]"
                for p in free_params(law, fit["tie"])
            )
    return None


def latency_model_table(model: Mapping[str, Any]) -> Table:
    """The latency model's coefficients, with its form and leave-one-out error in the note."""
    frame = pd.DataFrame(
        {
            "term": list(model["coefficients"]),
            "feature": [model["terms"][t] for t in model["coefficients"]],
            "coefficient_s": list(model["coefficients"].values()),
        }
    )
    return Table(
        "Latency model: T(shape) fitted on the measured shapes",
        frame,
        {"coefficient_s": ".4g"},
        f"Form {model['form']} (L = n_layers, d = d_model, V = vocabulary size, W = the layers' "
        f"matrix weights, which see the KV heads and the MLP width), fitted by "
        f"{model['fit']} on {model['n_shapes']} measured shapes. Median relative error: "
        f"in sample {model['fit_median_rel_err']:.1%}, leave-one-out "
        f"{model['loo_median_rel_err']:.1%} (max {model['loo_max_rel_err']:.1%}).",
    )


def objectives_table(by_objective: pd.DataFrame, applied: Mapping[str, Any]) -> Table:
    """Each objective's choice side by side (results/select/objectives.csv), with the budgets
    and the throughput objective's loss target it was held to (results/select/budgets.json)."""
    chosen = by_objective[by_objective["selected"] == 1].sort_values(["objective", "rank"])
    columns = ["objective", "rank", "name", "d_model", "n_layers", "n_kv_heads", "ffn_hidden"]
    columns += ["N", "loss_pred", "latency_s", "throughput_tps"]
    frame = chosen[[c for c in columns if c in chosen.columns]]
    target = applied["loss_target"]
    missing = "; ".join(f"{name}: {why}" for name, why in applied["infeasible"].items())
    return Table(
        "The selection by objective",
        frame,
        {"loss_pred": ".4f", "latency_s": ".4g", "throughput_tps": ".4g", "N": ",.0f"},
        f"loss: the paper's Eq. 3, lowest predicted loss within the budgets; throughput: the "
        f"follow-up's Eq. 4, highest generation throughput with predicted loss at most "
        f"{_cell(target, '.4f')} ({applied['max_loss']}), within the same budgets. Trained: the "
        f"{applied['objective']} objective's choice. A candidate with fewer KV heads than query "
        "heads (GQA) has its loss predicted by the law from its N and shape alone: no law has a "
        "KV-head term, so the Chinchilla and inference laws predict it as a multi-head shape of "
        "the same N and R, and the conditional law, where it keeps its MLP-ratio factor, as a "
        "larger MLP ratio r (its k and v projections are smaller), usually beyond the grid's "
        "(outside_grid in the selection table)."
        + (f" No selection: {missing}." if missing else ""),
    )


def trained_latency_table(trained: pd.DataFrame) -> Table:
    """Each trained candidate's latency from its checkpoint beside its random-init twin's."""
    columns = ["name", "shape", "checkpoint_median_s", "random_median_s", "paired_ratio"]
    frame = trained[[*columns, "band", "agree"]]
    agreeing = int(trained["agree"].astype(bool).sum())
    return Table(
        "Latency of the trained checkpoints against random-init models of the same shape",
        frame,
        {c: ".4g" for c in ("checkpoint_median_s", "random_median_s", "paired_ratio", "band")},
        f"{agreeing} of {len(trained)} agree within the noise (|ln paired ratio| within the "
        "band, twice the relative CV across rounds): a shape's latency does not depend on its "
        "weights, so timing random-init models for the selection is sound.",
    )


def gqa_table(speedups: pd.DataFrame, lengths: str) -> Table:
    """The gqa sweep (results/latency/gqa_speedups.csv): each twin's tokens/s and its gain
    over the MHA shape at every batch size, and what that says at batch 8 and more."""
    large = speedups[(speedups["batch_size"] >= 8) & (speedups["heads_per_kv"] > 1)]
    if large.empty:
        said = "No GQA twin was timed at batch 8 or more, where the KV cache read matters."
    else:
        fewest = large[large["n_kv_heads"] == large["n_kv_heads"].min()]
        gains = ", ".join(
            f"{row.speedup_vs_mha:.2f}x at batch {row.batch_size}" for row in fewest.itertuples()
        )
        faster = int((large["speedup_vs_mha"] > 1).sum())
        said = (
            f"At batch 8 and more, K = {int(fewest['n_kv_heads'].iloc[0])} has {gains} the "
            f"MHA shape's throughput; {faster} of {len(large)} (twin, batch) pairs are faster "
            "than MHA."
        )
    return Table(
        f"GQA: throughput of an MHA shape and its equal-N grouped-query twins ({lengths})",
        speedups,
        {"tokens_per_s": ".4g", "speedup_vs_mha": ".3f", "flagged": "yes/no"},
        "Each twin has fewer KV heads and an ffn_hidden widened to the multiple of "
        "model.multiple_of whose N is closest to the MHA shape's, so the gain is the KV "
        f"cache's, not a smaller model's; all timed interleaved in one job. {said}",
    )


def engines_table(table: pd.DataFrame | None, summary: Mapping[str, Any] | None) -> Table:
    """HF generate and vLLM on the same equal-N shapes (results/latency/engines.csv and .json),
    or what to do where this run did not time them."""
    title = "HF generate and vLLM on the same shapes (equal N across R)"
    if table is None or summary is None:
        return Table(
            title,
            pd.DataFrame({"shape": [], "hf_median_s": [], "vllm_median_s": []}),
            note="Not timed in this run: it needs the vLLM environment (`make vllm-env`) and "
            "latency.engines.report: true.",
        )
    agreement = summary["spearman"]
    columns = ["shape", "R", "N", "hf_median_s", "vllm_median_s", "vllm_over_hf"]
    columns += ["hf_median_ttft_ms", "vllm_median_ttft_ms", "hf_median_tpot_ms"]
    columns += ["vllm_median_tpot_ms", "hf_rank", "vllm_rank", "hf_flagged", "vllm_flagged"]
    return Table(
        title,
        table[columns],
        {
            "N": ",.0f",
            "hf_median_s": ".3f",
            "vllm_median_s": ".3f",
            "vllm_over_hf": ".2f",
            "hf_flagged": "yes/no",
            "vllm_flagged": "yes/no",
        },
        "Spearman rank agreement of the two engines' median times "
        + ("not computed (fewer than 3 shapes)" if agreement is None else f"{agreement:.2f}")
        + f"; vLLM's time over HF's, geometric mean {summary['vllm_over_hf_geomean']:.2f}. "
        "Each shape timed with the latency protocol through both backends (vLLM in its own "
        "environment, latency.python)."
        + "".join(f" {note}." for note in summary.get("engine_notes", [])),
    )


def crosscheck_table(table: pd.DataFrame, summary: Mapping[str, Any]) -> Table:
    """The candidates' measured throughput (the throughput protocol's) beside the analytic
    models (infscale.latency.analytic, written by rule latency_crosscheck)."""
    flagged = table.loc[table["flagged"].astype(bool), "shape"].tolist()
    said = (
        f"Measured out of the memory model's order beyond their timing noise: {', '.join(flagged)}."
        if flagged
        else "No shape is measured out of the memory model's order beyond its timing noise."
    )
    return Table(
        f"Throughput against the analytic models ({summary['input_tokens']} in / "
        f"{summary['output_tokens']} out, {summary['dtype']})",
        table,
        {
            "tokens_per_s": ".4g",
            "s_per_token": ".3g",
            "flops_per_token": ",.0f",
            "bytes_per_token": ",.0f",
            "flops_rel": ".3f",
            "bytes_rel": ".3f",
            "measured_over_memory_model": ".3f",
            "flagged": "yes/no",
        },
        "Each candidate at its best batch size: FLOPs per token 2·P_nonemb + 2·n_layers·T·d_q "
        f"(T = {summary['kv_length']:g}, the mean KV length) and bytes read per token (the "
        "weights once a step over the batch, plus each sequence's KV cache). Rank agreement "
        "of the measured throughput with the FLOPs model: Spearman "
        f"{summary['spearman_flops']:.2f}; with the memory model: "
        f"{summary['spearman_memory']:.2f}. " + said,
    )


def sweeps_table(fits: Mapping[str, Any]) -> Table:
    """What the latency sweeps (sweep_fits.json) show, one row per sweep."""
    rows = []
    for sweep in ("layers", "width"):
        if sweep in fits:
            fit = fits[sweep]
            rows.append(
                {
                    "sweep": sweep,
                    "x": fit["x"],
                    "n": fit["n"],
                    "slope_s": fit["slope"],
                    "intercept_s": fit["intercept"],
                    "r2": fit["r2"],
                }
            )
    if "ratio" in fits:
        ratio = fits["ratio"]
        rows.append(
            {
                "sweep": "ratio",
                "x": "R",
                "n": ratio["n"],
                "spearman_latency_vs_R": ratio["spearman_R_vs_latency"],
                "fastest": ratio["fastest"],
                "widest_shallowest": ratio["widest_shallowest"],
                "widest_shallowest_fastest": ratio["widest_shallowest_fastest"],
                "params_spread": ratio["params_spread"],
            }
        )
    flagged = fits.get("flagged") or []
    return Table(
        "Latency sweeps (paper Fig. 3): what they show",
        pd.DataFrame(rows),
        {"r2": ".4f", "spearman_latency_vs_R": ".3f", "params_spread": ".3f"},
        "layers, width: least-squares line of median latency on x, slope in s per unit of x; "
        "ratio: shapes of about equal N (params_spread = max N / min N), Spearman correlation "
        "of latency with R and whether the widest-shallowest shape is the fastest. "
        + (
            f"Flagged (CV above the bound): {', '.join(flagged)}."
            if flagged
            else "No measurement flagged."
        ),
    )


def downstream_table(downstream: Mapping[str, Any]) -> Table:
    """Loss -> accuracy (Gadre et al.): the fit's predictions of the trained candidates."""
    frame = pd.DataFrame(
        downstream["predictions"], columns=["name", "loss", "acc_pred", "acc_actual"]
    )
    frame["abs_err"] = (frame["acc_pred"] - frame["acc_actual"]).abs()
    params, m = downstream["params"], downstream["metrics"]
    return Table(
        "Loss -> downstream accuracy: predictions of the trained candidates",
        frame,
        {"loss": ".4f", "acc_pred": ".3f", "acc_actual": ".3f", "abs_err": ".3f"},
        f"Fit {downstream['form']} on {m['n_grid']} grid models: E = {params['E']:.4g}, "
        f"a = {params['a']:.4g}, b = {params['b']:.4g}; on the grid MSE {m['grid_mse']:.3g}, "
        f"R² {_cell(m['grid_r2'], '.3f')}; on the {m['n_candidates']} trained candidates mean "
        f"absolute error {_cell(m['candidate_mae'], '.3f')}, max "
        f"{_cell(m['candidate_max_abs_err'], '.3f')}.",
    )


def selection_table(
    selected: pd.DataFrame,
    fit: Mapping[str, Any],
    fit_set: str,
    predicted: pd.DataFrame,
    models: pd.DataFrame,
    baseline: str,
) -> Table:
    """The selection (paper Fig. 6): every candidate with its predicted loss (and the fit's
    bootstrap band), latency, feasibility and rank, the accuracy the loss->accuracy fit
    predicts from that loss (``predicted``: results/select/accuracy.csv), and the measured
    accuracy of those trained."""
    ordered = selected.sort_values(["rank", "loss_pred"], na_position="last", kind="stable")
    lo, hi = loss_band(ordered)
    trained = trained_candidates(models)[["name", "average"]]
    accuracy = ordered[["name"]].merge(trained, on="name", how="left")["average"].to_numpy()
    acc_pred = ordered[["name"]].merge(predicted, on="name", how="left")["acc_pred"].to_numpy()
    frame = pd.DataFrame(
        {
            "rank": ordered["rank"],
            "name": ordered["name"],
            "shape": ordered["shape"],
            "N": ordered["N"],
            "D": ordered["D"],
            "R": ordered["R"],
            "outside_grid": ordered.get("outside_grid"),
            "loss_pred": ordered["loss_pred"],
            "loss_pred_lo": lo,
            "loss_pred_hi": hi,
            "latency_s": ordered["latency_s"],
            "latency_source": ordered.get("latency_source"),
            "feasible": ordered["feasible"],
            "selected": ordered["selected"],
            "chosen_frac": ordered.get("chosen_frac"),
            "baseline": ordered["name"] == baseline,
            "acc_pred": acc_pred,
            "accuracy": accuracy,
        }
    )
    return Table(
        "Selection: every candidate, its predicted loss and latency, and the chosen",
        frame,
        {
            "N": ",.0f",
            "D": ",.0f",
            "loss_pred": ".4f",
            "loss_pred_lo": ".4f",
            "loss_pred_hi": ".4f",
            "latency_s": ".3f",
            "feasible": "yes/no",
            "selected": "yes/no",
            "chosen_frac": ".0%",
            "acc_pred": ".3f",
            "accuracy": ".3f",
        },
        f"loss_pred: the {fit['law']} law (fit set '{fit_set}'), with its "
        "bootstrap 95% band (lo, hi) where the fit has one; feasible: within the parameter, "
        "token and latency budgets; rank: among the selected, by predicted loss; chosen_frac: "
        "the share of the fit's bootstrap resamples under which the selection chooses it; "
        "acc_pred: the loss->accuracy fit at loss_pred; accuracy: measured, for the trained "
        "(selected and the baseline); outside_grid: the shape variables in which the "
        "candidate lies beyond the grid's range (R = d/L; x = d/sqrt(N_nonemb) and r, the "
        f"MLP-to-attention ratio), {_reads(fit)}.",
    )


def _reads(fit: Mapping[str, Any]) -> str:
    read = variables_read(fit)
    if not read:
        return f"of which the {fit['law']} law reads none"
    return (
        f"of which the {fit['law']} law reads {', '.join(read)}: its loss_pred there is an "
        "extrapolation"
    )


def loss_band(selected: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The 95% band of each candidate's predicted loss, as the selection wrote it
    (``loss_pred_lo``, ``loss_pred_hi``; NaN when the fit had no bootstrap)."""
    if {"loss_pred_lo", "loss_pred_hi"} <= set(selected.columns):
        return selected["loss_pred_lo"].to_numpy(float), selected["loss_pred_hi"].to_numpy(float)
    return (np.full(len(selected), np.nan),) * 2


def winner_table(winner: Mapping[str, Any]) -> Table:
    """The winner (results/select/winner.json) against the baseline."""
    frame = pd.DataFrame(
        [
            {
                **{key: value for key, value in winner.items() if key != "provenance"},
                "contenders": ", ".join(winner["contenders"]),
                "latency_tied": ", ".join(winner["latency_tied"]) or None,
            }
        ]
    )
    return Table(
        "The winner against the baseline",
        frame,
        {
            "accuracy": ".3f",
            "accuracy_stderr": ".3f",
            SMOOTH: ".4f",
            "latency_s": ".3f",
            "z": "g",
            "band": ".3f",
            "baseline_accuracy": ".3f",
            "baseline_latency_s": ".3f",
            "speedup": ".2f",
            "accuracy_diff": "+.3f",
            "accuracy_diff_band": ".3f",
        },
        "Winner: of the most accurate trained candidate and those tied with it (contenders: "
        "accuracy within z combined standard errors, sqrt(se_a² + se_b²), se of an average "
        f"sqrt(Σ se_task²) / n_tasks), the fastest; where every contender has {SMOOTH} (the "
        "smooth metric, lower is better), only those tied with the lowest stay. Those tied with "
        "the fastest on latency (latency_tied: the log ratio of the median times within z "
        "combined standard errors, se = sqrt(π/2)·CV/sqrt(trials)) are then judged on accuracy "
        "again. decided_by: the step that left one; band: z combined standard errors of the two "
        "most accurate. "
        "speedup = baseline latency / winner latency; accuracy_diff = winner - baseline, "
        "within accuracy_diff_band a tie (verdict).",
    )


def story_table(lines: Sequence[str]) -> Table:
    """The run's story (infscale.report.story.story_lines), a line a row."""
    return Table(
        "The story of this run",
        pd.DataFrame({"story": list(lines)}),
        note="The law the selection used, the shape effect it predicts, what it chose and "
        "why, and the winner against the baseline, from this run's own numbers.",
    )


def provenance_table(
    provenance: Mapping[str, Any], compute: Mapping[str, float], flops: Mapping[str, float]
) -> Table:
    """Where the results came from, and the compute they cost: ``compute`` summed over the
    benchmark files (compute_spent), ``flops`` results/select/training_flops.json."""
    rows = [(key, value) for key, value in provenance.items() if not isinstance(value, Mapping)]
    rows += [(f"version: {lib}", v) for lib, v in provenance.get("versions", {}).items()]
    rows += [
        ("benchmarked jobs", f"{compute['jobs']:,}"),
        ("wall-clock time, summed over jobs (s)", f"{compute['wall_s']:,.1f}"),
        ("CPU time, summed over jobs (s)", f"{compute['cpu_s']:,.1f}"),
        *((f"training FLOPs 6·N·D, {part}", f"{flops[part]:.4g}") for part in FLOP_PARTS),
    ]
    return Table(
        "Provenance and compute spent",
        pd.DataFrame(rows, columns=["item", "value"]),
        note="Compute: the sum over the per-job benchmark files in results/benchmarks (each "
        "job's latest run; the report job itself excluded) and, independently of the machine, "
        "the training FLOPs 6·N·D summed over the trained runs (D: each run's last boundary).",
    )


def predictions_table(predictions: pd.DataFrame) -> Table:
    """results/fit/predictions.csv, the columns a reader needs (the band where a fit has one)."""
    keep = ["law", "fit_set", "run", "size_group", "N", "D", "R", "loss", "loss_pred"]
    frame = predictions
    frame = frame[keep + [c for c in ("loss_pred_lo", "loss_pred_hi") if c in frame.columns]]
    return Table(
        "Every fit's prediction of every point",
        frame,
        {
            "N": ",.0f",
            "D": ",.0f",
            "loss": ".4f",
            "loss_pred": ".4f",
            "loss_pred_lo": ".4f",
            "loss_pred_hi": ".4f",
        },
        "The data behind the predicted-vs-actual figure; lo, hi: bootstrap 95% band.",
    )
