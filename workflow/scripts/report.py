"""Snakemake script: load every result into tables, draw the figures, write summary.md."""

from pathlib import Path

import pandas as pd

from infscale import report
from infscale.io import log_output_to, read_csv, read_json, write_csv
from infscale.laws import predict
from infscale.provenance import provenance

log_output_to(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
points = read_csv(inp.points)
fits = {
    (fit["law"], Path(path).stem.split("-", 1)[1]): fit
    for path in inp.fits
    for fit in [read_json(path)]
}
latency = pd.DataFrame([read_json(path) for path in inp.latency])
latency["R"] = latency["d_model"] / latency["n_layers"]


def accuracy_row(path, run):
    result = read_json(path)
    tasks = {name: task["value"] for name, task in result["tasks"].items()}
    return {"run": run, "average": result["average"], **tasks}


grid_runs = list(points["run"].drop_duplicates())
candidates = read_csv(snakemake.input.selected)
# The selected candidates plus the baseline: results/runs/candidates/<name>/points.csv.
trained_names = [Path(path).parent.name for path in inp.trained_points]
accuracy = pd.DataFrame(
    [accuracy_row(p, r) for p, r in zip(inp.grid_eval, grid_runs, strict=True)]
    + [
        accuracy_row(p, f"candidates/{n}")
        for p, n in zip(inp.trained_eval, trained_names, strict=True)
    ]
)
trained_points = pd.concat([read_csv(p) for p in inp.trained_points], ignore_index=True)
trained = trained_points.merge(
    candidates[["name", "latency_s"]], left_on="variant", right_on="name"
).merge(accuracy[["run", "average"]], on="run")

held_out = trained_points.assign(size_group="candidates")
tested = pd.concat([points, held_out], ignore_index=True)
predictions = {
    key: tested.assign(loss_pred=predict(fit, tested["N"], tested["D"], tested["R"]))
    for key, fit in fits.items()
}
write_csv(
    out.predictions,
    pd.concat(
        [frame.assign(law=law, fit_set=fit_set) for (law, fit_set), frame in predictions.items()],
        ignore_index=True,
    ),
)

grid_perf = (
    points.drop_duplicates("run", keep="last")
    .merge(
        latency[["d_model", "n_layers", "n_heads", "median_s"]],
        on=["d_model", "n_layers", "n_heads"],
    )
    .merge(accuracy, on="run")
)
figures = {
    "latency_vs_layers": report.fig_latency_vs_layers(latency),
    "loss_vs_ratio": report.fig_loss_vs_ratio(points, fits),
    "predicted_vs_actual": report.fig_predicted_vs_actual(predictions, fits),
    "accuracy_vs_latency": report.fig_accuracy_vs_latency(trained, grid_perf),
}
markdown = report.summary_markdown(
    points=points,
    latency=latency,
    accuracy=accuracy,
    fits=fits,
    candidates=candidates,
    trained=trained,
    baseline=snakemake.params.baseline,
    provenance=provenance(snakemake.config),
    figures=list(figures),
)
report.write_report(Path(out.summary).parent, figures, markdown)
