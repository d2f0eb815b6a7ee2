"""Snakemake script: one design round. Every run trained so far is fitted (``infscale fit``, with
bootstrap resamples) and the proposals not yet trained are designed on that fit; the chosen runs
(round_<r>.csv) are what the next round trains, and round_<r>.json says how settled the top-k
choice was before them."""

import sys
from pathlib import Path

import pandas as pd

from infscale.cli import main
from infscale.design.problem import run_flops
from infscale.design.proposals import proposal_runs, proposal_table
from infscale.design.rounds import design_runs
from infscale.io import read_csv, read_json, write_csv, write_json
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.select.candidates import budgets

start_script(snakemake.log[0])
params, out = snakemake.params, snakemake.output
trained = [Path(path).parent.name for path in snakemake.input.points]
write_csv(
    out.points, pd.concat([read_csv(path) for path in snakemake.input.points], ignore_index=True)
)
code = main(
    [
        "fit",
        "--data",
        out.points,
        "--law",
        params.law,
        "--method",
        params.method,
        "--tie",
        params.tie,
        "--bootstrap",
        str(params.bootstrap),
        "--seed",
        str(params.seed),
        "--out",
        out.fit,
    ]
)
if code:
    sys.exit(code)
fit = read_json(out.fit)
candidates = read_csv(snakemake.input.candidates)
proposals = proposal_table(proposal_runs(snakemake.config))
proposals = proposals[~proposals["name"].isin(trained)].reset_index(drop=True)
affordable = proposals[run_flops(proposals) <= params.budget] if len(proposals) else proposals
summary = {
    "round": int(snakemake.wildcards.round),
    "trained_before": trained,
    "budget_flops": params.budget,
    "law": params.law,
}
if affordable.empty:
    note = "no untrained proposal fits the round's budget: nothing to train"
    write_csv(out.table, affordable.assign(flops=[], cum_flops=[], gain=[], uncertainty_after=[]))
    write_json(out.summary, {**summary, "note": note, "provenance": provenance(snakemake.config)})
    print(note)
    sys.exit(0)
limits = budgets(params.select, candidates)
seed = params.design_seed + summary["round"]  # fresh simulated outcomes each round
result = design_runs(fit, affordable, candidates, params.select["k"], limits, params.budget, seed)
write_csv(out.table, result.table)
note = "" if len(result.table) else "no affordable run is expected to shrink the uncertainty"
write_json(
    out.summary,
    {
        **summary,
        "uncertainty_before": result.design.uncertainty_before,
        "modal_set": list(result.modal_set),
        "modal_share": result.modal_share,
        "resamples": len(result.problem.run_loss),
        "skipped_resamples": result.problem.skipped,
        "noise_sd": result.problem.noise_sd,
        "note": note,
        "provenance": provenance(snakemake.config),
    },
)
print(
    f"round {summary['round']}: uncertainty {result.design.uncertainty_before:.4f} bits, "
    f"modal set {', '.join(result.modal_set)} in {result.modal_share:.0%} of the resamples"
)
print(result.table.to_string() if len(result.table) else note)
