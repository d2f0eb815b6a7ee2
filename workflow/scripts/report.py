"""Snakemake script: load every result, draw the figures, build the tables, write the report."""

from pathlib import Path

import pandas as pd

from infscale.io import log_output_to, read_csv, read_json
from infscale.provenance import provenance
from infscale.report import figures
from infscale.report import story as report

log_output_to(snakemake.log[0])
inp, params = snakemake.input, snakemake.params

points = read_csv(inp.points)
trained_points = pd.concat([read_csv(path) for path in inp.trained_points], ignore_index=True)
# results/fit/<law>-<fit set>.json
fits = {
    (fit["law"], Path(path).stem.split("-", 1)[1]): fit
    for path in inp.fits
    for fit in [read_json(path)]
}
latency = pd.DataFrame([read_json(path) for path in inp.latency])
accuracy = report.accuracy_table(
    {Path(path).stem: read_json(path) for path in inp.grid_eval}
    | {f"candidates/{Path(path).stem}": read_json(path) for path in inp.trained_eval}
)
selected = read_csv(inp.selected)
comparison = read_csv(inp.comparison)
downstream = read_json(inp.downstream)
sweeps, sweep_fits = read_csv(inp.sweeps), read_json(inp.sweep_fits)
throughput = read_csv(inp.throughput)
latency_model = read_json(inp.latency_model)
benchmarks = {
    str(path): pd.read_csv(path, sep="\t")
    for path in sorted(Path(params.benchmarks).rglob("*.tsv"))
    if path != Path(params.own_benchmark)
}

models = report.evaluated_models(points, trained_points, accuracy, latency, selected)
predictions = report.test_predictions(points, trained_points, fits)
fit_set = params.select_fit_set
tasks = [column for column in accuracy.columns if column not in ("run", "average")]
every_point = pd.concat([points, trained_points], ignore_index=True)  # the test set
drawn = {
    "accuracy_vs_latency": figures.fig_accuracy_vs_latency(models),
    "loss_vs_ratio": figures.fig_loss_vs_ratio(points, fits, fit_set),
    "predicted_vs_actual": figures.fig_predicted_vs_actual(predictions, fits),
    "spearman": figures.fig_spearman(predictions),
    "loss_vs_flops": figures.fig_loss_vs_flops(every_point, fits, fit_set),
    "isoflop": figures.fig_isoflop(every_point, fits, fit_set),
    "latency_sweeps": figures.fig_latency_sweeps(sweeps, sweep_fits),
    "throughput": figures.fig_throughput(throughput),
    "accuracy_vs_loss": figures.fig_accuracy_vs_loss(models, tasks, downstream),
}

winner = report.choose_winner(models, selected, params.baseline)
tables = {
    "selection": report.selection_table(
        selected, fits[(params.select_law, fit_set)], fit_set, downstream, models, params.baseline
    ),
    "winner": report.winner_table(winner),
    "coefficients": report.coefficients_table(fits),
    "fit_sets": report.fit_sets_table(predictions, fits),
    "law_comparison": report.comparison_table(comparison, fits),
    "predictions": report.predictions_table(predictions),
    "latency_model": report.latency_model_table(latency_model),
    "latency_sweeps": report.sweeps_table(sweep_fits),
    "downstream": report.downstream_table(downstream),
    "runs": report.runs_table(points, trained_points, models),
    "provenance": report.provenance_table(
        provenance(snakemake.config),
        report.compute_spent(benchmarks),
        report.training_flops(points, trained_points),
    ),
}
markdown = report.summary_markdown(tables, winner, list(drawn), snakemake.config)
for path in report.write_report(Path(snakemake.output.summary).parent, drawn, tables, markdown):
    print(path)
