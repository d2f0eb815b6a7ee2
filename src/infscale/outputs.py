"""The report's files, named without importing the report: the workflow declares the report
rule's outputs from them at parse time (rules/common.smk), infscale.report.story writes them,
tests check a run against them. ``COMPUTED`` names the files its stages computed for it.

``FIGURES`` and ``TABLES`` name every figure and table a report has, and the report category
each is shown under. Files: figures/<name>.png and .svg, tables/<name>.csv and .html.
"""

from __future__ import annotations

from pathlib import Path

SELECTION = "1. Selection and winner"
LAWS = "2. Scaling laws"
LATENCY = "3. Latency"
DOWNSTREAM = "4. Downstream accuracy"
RUNS = "5. Runs and provenance"
DESIGN = "6. Design rounds"
# The subcategory of the story and summary.md: Snakemake's report sorts subcategories by name,
# and this one comes before "Figures" and "Tables", so the story is the report's first item.
AT_A_GLANCE = "At a glance"

# name -> report category
FIGURES: dict[str, str] = {
    "accuracy_vs_latency": SELECTION,  # paper Fig. 1
    "loss_vs_throughput": SELECTION,  # the follow-up's Pareto view of the candidates
    "loss_vs_ratio": LAWS,  # Fig. 5
    "predicted_vs_actual": LAWS,  # Figs 8-10
    "spearman": LAWS,  # Figs 8-10, the bars
    "loss_vs_flops": LAWS,
    "isoflop": LAWS,
    "latency_sweeps": LATENCY,  # Fig. 3
    "throughput": LATENCY,  # Fig. 4
    "gqa_throughput": LATENCY,  # the follow-up's KV-cache effect
    "accuracy_vs_loss": DOWNSTREAM,  # Fig. 7
}
TABLES: dict[str, str] = {
    "story": SELECTION,  # also tables/story.rst, for the HTML report's front page
    "selection": SELECTION,
    "winner": SELECTION,
    "objectives": SELECTION,
    "coefficients": LAWS,
    "fit_sets": LAWS,
    "law_comparison": LAWS,
    "predictions": LAWS,
    "latency_model": LATENCY,
    "latency_sweeps": LATENCY,
    "gqa_throughput": LATENCY,
    "throughput_crosscheck": LATENCY,
    "engines": LATENCY,
    "trained_latency": LATENCY,
    "downstream": DOWNSTREAM,
    "runs": RUNS,
    "provenance": RUNS,
    "design_rounds": DESIGN,  # config design: the runs each round added, and why
    "design_vs_grid": DESIGN,
}
FIGURE_FORMATS = ("png", "svg")
# What the stages computed for the report to draw, by the report rule's input name: the report
# reads these and computes nothing of its own (docs/results.md describes each file).
COMPUTED: dict[str, str] = {
    "spearman": "results/fit/spearman.csv",
    "isoflop": "results/fit/curves/isoflop.csv",
    "frontier": "results/fit/curves/frontier.csv",
    "ratio_curves": "results/fit/curves/ratio.csv",
    "compute_points": "results/fit/curves/points.csv",
    "gqa_speedups": "results/latency/gqa_speedups.csv",
    "training_flops": "results/select/training_flops.json",
    "accuracy": "results/select/accuracy.csv",
    "accuracy_curve": "results/select/accuracy_curve.csv",
}


def report_files(out_dir: str | Path = "results/report") -> dict[str, Path]:
    """Every file a report writes, by output name (``<figure>_<fmt>``, ``<table>_csv``,
    ``<table>_html``, ``story_rst``, ``summary``): what the workflow declares, what
    write_report writes."""
    out_dir = Path(out_dir)
    files = {
        f"{name}_{fmt}": out_dir / "figures" / f"{name}.{fmt}"
        for name in FIGURES
        for fmt in FIGURE_FORMATS
    }
    for name in TABLES:
        files[f"{name}_csv"] = out_dir / "tables" / f"{name}.csv"
        files[f"{name}_html"] = out_dir / "tables" / f"{name}.html"
    # Beside story.html: the front page (workflow/report/workflow.rst) finds it from there.
    files["story_rst"] = out_dir / "tables" / "story.rst"
    return files | {"summary": out_dir / "summary.md"}


def report_entries() -> dict[str, tuple[str, str, str]]:
    """What Snakemake's HTML report shows, by output name (as in report_files): each figure's
    PNG, each table's HTML page and summary.md, with its caption file (under workflow/report/),
    category and subcategory."""
    return (
        {f"{n}_png": (f"figures/{n}.rst", c, "Figures") for n, c in FIGURES.items()}
        | {f"{n}_html": (f"tables/{n}.rst", c, "Tables") for n, c in TABLES.items()}
        | {
            "story_html": ("tables/story.rst", SELECTION, AT_A_GLANCE),
            "summary": ("summary.rst", SELECTION, AT_A_GLANCE),
        }
    )
