"""Snakemake script: load every result, draw the figures, build the tables and the story, write
the report. What it shows was decided and computed by the stages that wrote the files (the
predictions, fit-set scores and curves by fit, the fronts, the winner and the predicted accuracy
by select, the GQA gains by latency); this script only reads them."""

from pathlib import Path

import pandas as pd

from infscale.design.reference import REFERENCE_FILES
from infscale.fit.predictions import by_fit, fit_key
from infscale.io import read_csv, read_json
from infscale.provenance import provenance
from infscale.report import design, figures, story, tables
from infscale.script import start_script

start_script(snakemake.log[0])
inp, params = snakemake.input, snakemake.params

points = read_csv(inp.points)
trained_points = pd.concat([read_csv(path) for path in inp.trained_points], ignore_index=True)
# results/fit/<law>-<fit set>.json
fits = {fit_key(path, fit): fit for path in inp.fits for fit in [read_json(path)]}
chosen = read_json(inp.chosen)
applied = read_json(inp.budgets)  # the budgets the selection applied, and its stability counts
selected = read_csv(inp.selected)
by_objective = read_csv(inp.objectives)
throughput_front = read_csv(inp.throughput_front)
models = read_csv(inp.models)  # grid runs and trained candidates: accuracy, latency, the front
winner = read_json(inp.winner)
predictions_table = read_csv(inp.predictions)
predictions = by_fit(predictions_table)
comparison = read_csv(inp.comparison)
downstream = read_json(inp.downstream)
sweeps, sweep_fits = read_csv(inp.sweeps), read_json(inp.sweep_fits)
throughput = read_csv(inp.throughput)
gqa = read_csv(inp.gqa)
gqa_speedup = read_csv(inp.gqa_speedups)
gqa_lengths = f"{gqa['input_tokens'].iloc[0]} in / {gqa['output_tokens'].iloc[0]} out"
scores = read_csv(inp.fit_sets)
ratio_curves = read_csv(inp.ratio_curves)
latency_model = read_json(inp.latency_model)
benchmarks = {
    str(path): pd.read_csv(path, sep="\t")
    for path in sorted(Path(params.benchmarks).rglob("*.tsv"))
    if path != Path(params.own_benchmark)
}

fit_set = params.select_fit_set
compute_points = read_csv(inp.compute_points)  # every point (the test set) with its compute
shaped = ratio_curves.iloc[0]
shaped_name = f"{shaped['law']} law, tie {shaped['tie']}, fit set '{fit_set}'"
drawn = {
    "accuracy_vs_latency": figures.fig_accuracy_vs_latency(models, models["pareto"].to_numpy(bool)),
    "loss_vs_throughput": figures.fig_loss_vs_throughput(
        by_objective, throughput_front["pareto"].to_numpy(bool), applied["loss_target"]
    ),
    "loss_vs_ratio": figures.fig_loss_vs_ratio(points, ratio_curves, shaped_name),
    "predicted_vs_actual": figures.fig_predicted_vs_actual(predictions, scores),
    "spearman": figures.fig_spearman(predictions, read_csv(inp.spearman), scores),
    "loss_vs_flops": figures.fig_loss_vs_flops(
        compute_points, read_csv(inp.frontier), f"Chinchilla law, fit set '{fit_set}'"
    ),
    "isoflop": figures.fig_isoflop(compute_points, read_csv(inp.isoflop), fit_set),
    "latency_sweeps": figures.fig_latency_sweeps(sweeps, sweep_fits),
    "throughput": figures.fig_throughput(throughput),
    "gqa_throughput": figures.fig_gqa_throughput(gqa_speedup, gqa_lengths),
    "accuracy_vs_loss": figures.fig_accuracy_vs_loss(
        models, params.tasks, downstream, read_csv(inp.accuracy_curve)
    ),
}

shown = {
    "story": tables.story_table(
        story.story_lines(chosen, selected, winner, applied["budgets"], applied, by_objective)
    ),
    "selection": tables.selection_table(
        selected, chosen, fit_set, read_csv(inp.accuracy), models, params.baseline
    ),
    "winner": tables.winner_table(winner),
    "objectives": tables.objectives_table(by_objective, applied),
    "coefficients": tables.coefficients_table(fits),
    "fit_sets": tables.fit_sets_table(scores),
    "law_comparison": tables.comparison_table(comparison, fits),
    "predictions": tables.predictions_table(predictions_table),
    "latency_model": tables.latency_model_table(latency_model),
    "latency_sweeps": tables.sweeps_table(sweep_fits),
    "gqa_throughput": tables.gqa_table(gqa_speedup, gqa_lengths),
    "engines": tables.engines_table(
        read_csv(inp.engines[0]) if inp.engines else None,
        read_json(inp.engines[1]) if inp.engines else None,
    ),
    "throughput_crosscheck": tables.crosscheck_table(
        read_csv(inp.crosscheck), read_json(inp.crosscheck_summary)
    ),
    "trained_latency": tables.trained_latency_table(read_csv(inp.trained_latency)),
    "downstream": tables.downstream_table(downstream),
    "runs": tables.runs_table(points, trained_points, models),
    "provenance": tables.provenance_table(
        provenance(snakemake.config),
        tables.compute_spent(benchmarks),
        read_json(inp.training_flops),
    ),
}
# the full-grid run beside this one (design.reference): its files, or none
reference = dict(zip(REFERENCE_FILES, inp.reference, strict=False))
shown["design_rounds"] = design.rounds_table(
    params.seed_runs,
    [
        (read_csv(t), read_json(j))
        for t, j in zip(inp.design_tables, inp.design_summaries, strict=True)
    ],
    params.run_flops,
    params.grid_flops,
    selected,
)
shown["design_vs_grid"] = design.comparison_table(
    {
        "points": points,
        "fit": chosen,
        "selected": selected,
        "winner": winner,
        "flops": read_json(inp.training_flops),
    },
    {
        "points": read_csv(reference["points"]),
        "fit": read_json(reference["fit"]),
        "selected": read_csv(reference["selected"]),
        "winner": read_json(reference["winner"]),
        "flops": read_json(reference["flops"]),
    }
    if reference
    else None,
    params.reference_dir,
)
markdown = story.summary_markdown(shown, list(drawn), snakemake.config)
for path in story.write_report(Path(snakemake.output.summary).parent, drawn, shown, markdown):
    print(path)
