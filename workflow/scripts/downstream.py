"""Snakemake script: fit loss -> accuracy (directly, and through the task loss) on the grid,
predict the trained candidates."""

from pathlib import Path

from infscale.evaluate.harness import SMOOTH
from infscale.fit.downstream import Point, downstream
from infscale.io import read_csv, read_json, write_json
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
column = snakemake.params.loss_column  # the validation loss, "val_loss"


def point(frame, eval_path):
    """The loss at the run's last boundary (largest D), the model that was evaluated, with its
    task loss and average accuracy."""
    result = read_json(eval_path)
    loss = float(frame.sort_values("D", kind="stable")[column].iloc[-1])
    return Point(loss, float(result[SMOOTH]), float(result["average"]))


points = read_csv(snakemake.input.points)
grid = {}
for path in snakemake.input.grid_eval:
    run = Path(path).stem
    rows = points[points["run"] == run]
    if not rows.empty:
        grid[run] = point(rows, path)
candidates = {
    Path(eval_path).stem: point(read_csv(points_path), eval_path)
    for points_path, eval_path in zip(
        snakemake.input.trained_points, snakemake.input.trained_eval, strict=True
    )
}
result = downstream(grid, candidates) | {"loss_column": column, "task_loss": SMOOTH}
write_json(snakemake.output[0], result | {"provenance": provenance(snakemake.config)})
print(result)
