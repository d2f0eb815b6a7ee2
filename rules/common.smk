# Helpers shared by the rules: config validation, the grid, and the names of result files.
import os
import sys
from pathlib import Path

from infscale.checks import validate_config
from infscale.design.problem import run_flops
from infscale.design.proposals import proposal_runs, proposal_table, round_budget
from infscale.design.reference import reference_files
from infscale.errors import InputError
from infscale.fit.laws import PAPER_LAWS
from infscale.grid import grid_runs, candidate_runs, latency_shapes, run_table
from infscale.provenance import CONFIG_HASH_ENV, config_hash
from infscale.train.sizing import (
    planned_train_config,
    size_training,
    slice_note,
    train_retries,
)
from infscale.outputs import COMPUTED, report_entries, report_files
from infscale.latency.sweeps import (
    FIG3_SWEEPS,
    SWEEPS,
    latency_settings,
    sweep_items,
    sweep_lengths,
    throughput_shape,
)
from infscale.latency.throughput import throughput_settings
from infscale.latency.engines import engine_shapes

try:
    config_warnings = validate_config(
        config, workflow.source_path("../config/schema.yaml")
    )
except InputError as err:
    print(f"infscale: invalid config: {err}", file=sys.stderr)
    sys.exit(2)
for warning in config_warnings:
    print(f"infscale: warning: {warning}", file=sys.stderr)


def sorted_keys(value):
    """``value`` with every mapping's keys sorted."""
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


# Snakemake reruns a job when the repr of its params changes, and a dict's repr follows its key
# order: a config rewritten with other key order must not rerun anything. The library does not
# depend on key order (the random fit sets draw from sorted groups and shapes).
config.update(sorted_keys(config))

CACHE = str(Path(config["cache_dir"]).expanduser())
GRID = grid_runs(config)
# The runs a design may train (none unless design.enabled): fixed names, trained as grid runs.
PROPOSALS = proposal_runs(config)
RUNS = {**run_table(config), **{run.name: run for run in PROPOSALS}}
SHAPES = {**latency_shapes(config), **{run.shape.label: run.shape for run in PROPOSALS}}
DESIGN = config["design"]
DESIGN_BUDGET = round_budget(config) if DESIGN["enabled"] else None
# Each proposal's training FLOPs (6·N·D at its last multiplier), as the design counts them.
DESIGN_FLOPS = (
    dict(zip([run.name for run in PROPOSALS], run_flops(proposal_table(PROPOSALS))))
    if PROPOSALS
    else {}
)
DESIGN_REFERENCE = reference_files(DESIGN["reference"]) if DESIGN["enabled"] else {}


def design_round_files(suffix):
    """Every design round's table (csv) or summary (json); none with design off."""
    rounds = range(1, DESIGN["rounds"] + 1) if DESIGN["enabled"] else []
    return [f"results/design/round_{r}.{suffix}" for r in rounds]


CONFIG_HASH = config_hash(config)
# The infscale commands the rules run (rule fit, choose_law) record it as their provenance.
os.environ[CONFIG_HASH_ENV] = CONFIG_HASH
PAPER_PROTOCOL = config["train"]["protocol"] == "paper"
GRID_RUN = "{size}-{variant}" if PAPER_PROTOCOL else "{size}-{variant}-{mult}x"


wildcard_constraints:
    size="[A-Za-z0-9]+",
    variant="[A-Za-z0-9]+",
    mult="[0-9]+",
    name="[A-Za-z0-9_]+",
    shape="d[0-9]+-l[0-9]+-h[0-9]+(-kv[0-9]+)?(-f[0-9]+)?",
    law="chinchilla|inference",
    fitset="[A-Za-z0-9]+",
    run="[A-Za-z0-9]+-[A-Za-z0-9]+(-[0-9]+x)?|candidates/[A-Za-z0-9_]+",
    round="[1-9][0-9]*",


def grid_run_name(wildcards):
    """The run a grid ``train`` job produces, under either protocol."""
    if PAPER_PROTOCOL:
        return f"{wildcards.size}-{wildcards.variant}"
    return f"{wildcards.size}-{wildcards.variant}-{wildcards.mult}x"


def grid_files(pattern):
    """An input function: ``pattern`` with ``{run}`` filled for every grid run trained, which
    with design.enabled are the runs of every round (design_files)."""

    def files(wildcards):
        if DESIGN["enabled"]:
            return design_files(pattern, DESIGN["rounds"])
        return [pattern.format(run=run.name) for run in GRID]

    return files


def design_files(pattern, last_round):
    """``pattern`` for the seed runs and those rounds 1..``last_round`` of the design_round
    checkpoint chose; reading a round's table makes the DAG wait for it."""
    import pandas as pd

    names = list(DESIGN["seed_runs"])
    for r in range(1, last_round + 1):
        names += list(
            pd.read_csv(checkpoints.design_round.get(round=r).output.table)["name"]
        )
    return [pattern.format(run=name) for name in names]


# The latency protocol with its optional keys filled in (sweeps apart, so that changing a
# sweep does not rerun every per-shape measurement).
LATENCY = {
    k: v
    for k, v in latency_settings(config).items()
    if k not in ("sweeps", "throughput", "throughput_protocol", "engines")
}
LATENCY_SOURCE = config["select"]["latency_source"]


def latency_labels():
    """The shapes timed per shape: the grid's, and the candidates' when all are measured."""
    if LATENCY_SOURCE != "measure":
        return sorted({run.shape.label for run in GRID + PROPOSALS})
    return list(SHAPES)


def latency_files():
    """Per-shape latency results, one JSON per shape of ``latency_labels``."""
    return [f"results/latency/{label}.json" for label in latency_labels()]


def candidate_latency_files(wildcards):
    """The candidates' measured latency: all (measure), none (predict), or the shortlist
    of the ``latency_shortlist`` checkpoint (measure_top)."""
    if LATENCY_SOURCE == "predict":
        return []
    if LATENCY_SOURCE == "measure_top":
        import pandas as pd

        table = pd.read_csv(checkpoints.latency_shortlist.get().output[0])
        labels = table.loc[table["measure"] == 1, "shape"]
        return [f"results/latency/{label}.json" for label in labels]
    return [f"results/latency/{run.shape.label}.json" for run in candidate_runs(config)]


def model_latency_files():
    """Per-shape results the latency model is fitted on (never a predicted candidate's)."""
    return latency_files()


def selected_candidates(wildcards):
    """Names chosen by the ``select`` checkpoint; reading it makes the DAG wait for it."""
    import pandas as pd

    table = pd.read_csv(checkpoints.select.get().output.selected)
    return list(table.loc[table["selected"] == 1, "name"])


def fit_files(pattern):
    """``pattern`` for both laws on every fit set."""
    return [
        pattern.format(law=law, fitset=s)
        for law in PAPER_LAWS
        for s in config["fit"]["sets"]
    ]


def candidate_files(pattern, wildcards):
    """``pattern`` for every candidate the ``select`` checkpoint chose, and the baseline.

    The baseline is trained even when not selected: the report's verdict is the winner's
    speed-up and accuracy difference against it, as in the paper (Morph-1B vs 2048x24).
    """
    names = selected_candidates(wildcards)
    baseline = config["select"]["baseline"]
    if baseline not in names:
        names.append(baseline)
    return [pattern.format(name=name) for name in names]


def removed_grid_checkpoints(wildcards):
    """remove_checkpoints' markers of the grid runs, where the config removes checkpoints."""
    if not config["remove_checkpoints"]:
        return []
    return grid_files("results/runs/{run}/checkpoints.removed")(wildcards)


def removed_candidate_checkpoints(wildcards):
    """The same for the candidates' runs, once the ``select`` checkpoint named them."""
    if not config["remove_checkpoints"]:
        return []
    return candidate_files(
        "results/runs/candidates/{name}/checkpoints.removed", wildcards
    )


def report_outputs():
    """The report rule's outputs by name (infscale.outputs.report_files); those Snakemake's HTML
    report shows are flagged with their caption (workflow/report/) and category."""
    shown = report_entries()
    outputs = {}
    for key, path in report_files().items():
        if key in shown:
            caption, category, subcategory = shown[key]
            outputs[key] = report(
                str(path),
                caption=f"../workflow/report/{caption}",
                category=category,
                subcategory=subcategory,
            )
        else:
            outputs[key] = str(path)
    return outputs


def train_run_name(wildcards):
    """The run a ``train`` or ``train_candidate`` job trains."""
    if "name" in wildcards.keys():
        return f"candidates/{wildcards.name}"
    return grid_run_name(wildcards)


def run_train_config(name):
    """The train config a run's job starts from: the candidates' with select.train_overrides."""
    if name.startswith("candidates/"):
        return {**config["train"], **config["select"]["train_overrides"]}
    return config["train"]


# Every training job sized once, at parse time (infscale.train.sizing): its GPUs, nodes,
# micro-batch, activation checkpointing and wall time against the config's cluster section.
CLUSTER = config["cluster"]
TRAIN_PLANS = {
    name: size_training(
        run.shape,
        run.total_tokens,
        run_train_config(name),
        config["data"]["seq_len"],
        CLUSTER,
    )
    for name, run in RUNS.items()
}
# A run longer than the time limit continues across jobs: each exits 75 with a checkpoint at
# the time-limit signal, and Snakemake's retries resubmit it (rules/train.smk).
TRAIN_RETRIES = train_retries(list(TRAIN_PLANS.values()))
for name, plan in TRAIN_PLANS.items():
    if plan.slices > 1:
        print(f"infscale: {name} {slice_note(plan, CLUSTER)}", file=sys.stderr)


def train_plan(wildcards):
    """The plan of the run a training job trains."""
    return TRAIN_PLANS[train_run_name(wildcards)]


def train_params(wildcards):
    """The train config the job runs with: the planned micro-batch, activation checkpointing
    and parallel layout in place of the config's."""
    name = train_run_name(wildcards)
    return planned_train_config(run_train_config(name), TRAIN_PLANS[name])


def train_gpu_request(wildcards):
    """GPUs in all (the plugin's `gpu`, sbatch --gpus=<gpu_model>:K); none on a CPU rehearsal."""
    return train_plan(wildcards).gpus if CLUSTER["device"] == "gpu" else None


def train_tasks(wildcards):
    """One launcher task per node; a one-node job asks for 2, since the plugin refuses its mpi
    path with one task (the launcher's srun starts one; the CPUs are split between the two).
    """
    return max(2, train_plan(wildcards).nodes)


def train_cpus_per_task(wildcards):
    """The node's planned CPUs over its tasks (train_tasks)."""
    plan = train_plan(wildcards)
    per_node = train_tasks(wildcards) // plan.nodes
    return -(-plan.cpus_per_task // per_node)


def train_mpi(wildcards):
    """Always `srun`: the plugin then runs the job's script in the batch shell, without its
    `srun -n1 snakemake` wrapper, and the script starts training as its own job step (one
    torchrun per node). So the time-limit signal (--signal=USR1@300, sent to the job steps)
    reaches the ranks, which save and exit 75, and not the inner Snakemake, which SIGUSR1 would
    end before they save."""
    return "srun"


def train_tasks_per_gpu(wildcards):
    """0 on a GPU job: else the plugin turns `tasks` into --ntasks-per-gpu."""
    return 0 if CLUSTER["device"] == "gpu" else None


# Quick aggregation steps run where Snakemake runs (a cluster's login node), never via sbatch.
localrules:
    all,
    remove_checkpoints,
    collect_points,
    fit,
    predictions,
    compare_laws,
    choose_law,
    fit_curves,
    downstream,
    latency_model,
    latency_sweeps,
    latency_all,
    latency_crosscheck,
    gqa_speedups,
    candidates,
    design_round,
    latency_shortlist,
    select,
    predicted_accuracy,
    winner,
    report,
