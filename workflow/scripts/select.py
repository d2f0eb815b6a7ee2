"""Snakemake script: the top-k candidates by the chosen law's predicted loss within the budgets,
with each candidate's prediction band and how often the bootstrap resamples choose it."""

from infscale.fit.laws import predict_points, predict_points_interval
from infscale.io import log_output_to, read_csv, read_json, write_csv, write_json
from infscale.select.candidates import budgets
from infscale.select.ilp import select_top_k
from infscale.select.stability import selection_frequency

log_output_to(snakemake.log[0])
fit = read_json(snakemake.input.fit)
candidates = read_csv(snakemake.input.candidates)
limits = budgets(snakemake.params.select, candidates)
k = snakemake.params.k
table = select_top_k(candidates, predict_points(fit, candidates), k, **limits)
band = predict_points_interval(fit, table)
stability = {"resamples": 0, "skipped": 0}
if band is not None:
    table = table.assign(loss_pred_lo=band[0], loss_pred_hi=band[1])
    frequency = selection_frequency(fit["bootstrap"]["samples"], fit, candidates, k, limits)
    table = table.assign(chosen_frac=frequency.chosen_frac)
    stability = {"resamples": frequency.resamples, "skipped": frequency.skipped}
write_csv(snakemake.output.selected, table)
write_json(
    snakemake.output.budgets,
    {
        "budgets": limits,
        "k": k,
        "law": fit["law"],
        "form": fit.get("form"),
        "tie": fit["tie"],
        **stability,
    },
)
print(table.to_string())
print(f"budgets: {limits}; stability over {stability['resamples']} resamples")
