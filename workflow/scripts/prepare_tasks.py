"""Snakemake script: lm-eval task definitions that read the eval data from local files."""

from infscale.io import log_output_to
from infscale.tasks import prepare_tasks

log_output_to(snakemake.log[0])
params = snakemake.params
prepare_tasks(params.tasks, snakemake.output[0], params.cache, params.source)
