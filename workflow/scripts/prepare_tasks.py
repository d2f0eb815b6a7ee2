"""Snakemake script: lm-eval task definitions that read the eval data from local files."""

from infscale.evaluate.tasks import prepare_tasks
from infscale.hub import local_paths
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
params = snakemake.params
prepare_tasks(
    params.tasks,
    snakemake.output[0],
    params.cache,
    params.source,
    provenance(snakemake.config),
    local_paths(snakemake.config)["mirror"],
)
