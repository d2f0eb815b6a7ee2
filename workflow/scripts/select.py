"""Snakemake script: the top-k candidates by the configured objective within the budgets, with
each candidate's prediction band and how often the bootstrap resamples choose it; the
selection by every objective (loss, throughput) side by side; and the loss-throughput Pareto
front of the candidates."""

import pandas as pd

from infscale.errors import InputError, one_line
from infscale.fit.laws import predict_points, predict_points_interval
from infscale.io import read_csv, read_json, write_csv, write_json
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.select.candidates import budgets
from infscale.select.ilp import select_for
from infscale.select.objectives import OBJECTIVES, loss_target
from infscale.select.pareto import pareto_front
from infscale.select.stability import selection_frequency

start_script(snakemake.log[0])
select = snakemake.params.select
fit = read_json(snakemake.input.fit)
candidates = read_csv(snakemake.input.candidates)
limits = budgets(select, candidates)
k, objective, z = select["k"], select["objective"], select["timing_z"]
loss = predict_points(fit, candidates)
target = loss_target(select["max_loss"], candidates, loss, select["baseline"])


def by(name: str) -> pd.DataFrame:
    return select_for(name, candidates, loss, k, limits, target, z=z)


table = by(objective)  # the configured objective's: these candidates are trained
band = predict_points_interval(fit, table)
stability = {"resamples": 0, "skipped": 0}
if band is not None:
    table = table.assign(loss_pred_lo=band[0], loss_pred_hi=band[1])
    frequency = selection_frequency(
        fit["bootstrap"]["samples"],
        fit,
        candidates,
        k,
        limits,
        objective,
        select["max_loss"],
        select["baseline"],
        z,
    )
    table = table.assign(chosen_frac=frequency.chosen_frac)
    stability = {"resamples": frequency.resamples, "skipped": frequency.skipped}

# Every objective's choice, side by side; one that no k candidates can meet says why.
rows, infeasible = [], {}
for name in OBJECTIVES:
    try:
        chosen = table if name == objective else by(name)
    except InputError as err:
        infeasible[name] = one_line(err)
        continue
    rows.append(chosen.assign(objective=name))
by_objective = pd.concat(rows, ignore_index=True)
# The front over one objective's rows (each block holds the same candidates): no candidate
# has both a lower predicted loss and a higher throughput than one on it.
block = by_objective[by_objective["objective"] == by_objective["objective"].iloc[0]]
front = block[["name", "loss_pred", "throughput_tps"]].assign(
    pareto=pareto_front(block["loss_pred"], block["throughput_tps"]).astype(int)
)
write_csv(snakemake.output.selected, table)
write_csv(snakemake.output.objectives, by_objective)
write_csv(snakemake.output.front, front)
write_json(
    snakemake.output.budgets,
    {
        "budgets": limits,
        "k": k,
        "objective": objective,
        "max_loss": select["max_loss"],
        "loss_target": target,
        "infeasible": infeasible,
        "law": fit["law"],
        "form": fit.get("form"),
        "tie": fit["tie"],
        **stability,
        "provenance": provenance(snakemake.config),
    },
)
print(table.to_string())
print(f"budgets: {limits}; stability over {stability['resamples']} resamples")
for name, reason in infeasible.items():
    print(f"objective {name}: no selection ({reason})")
