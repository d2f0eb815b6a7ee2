"""Snakemake script: fit loss -> accuracy on the grid, predict the trained candidates."""

from pathlib import Path

from infscale.fit.downstream import downstream
from infscale.io import log_output_to, read_csv, read_json, write_json
from infscale.provenance import provenance

log_output_to(snakemake.log[0])
column = snakemake.params.loss_column


def last_loss(frame):
    """The loss at the run's last boundary (largest D): the model that was evaluated."""
    return float(frame.sort_values("D", kind="stable")[column].iloc[-1])


points = read_csv(snakemake.input.points)
grid = {}
for path in snakemake.input.grid_eval:
    run = Path(path).stem
    rows = points[points["run"] == run]
    if not rows.empty:
        grid[run] = (last_loss(rows), float(read_json(path)["average"]))
candidates = {}
for points_path, eval_path in zip(
    snakemake.input.trained_points, snakemake.input.trained_eval, strict=True
):
    name = Path(eval_path).stem
    candidates[name] = (last_loss(read_csv(points_path)), float(read_json(eval_path)["average"]))
result = downstream(grid, candidates) | {"loss_column": column}
write_json(snakemake.output[0], result | {"provenance": provenance(snakemake.config)})
print(result)
