"""Snakemake script: one tokenization job, its source shards packed into its own token files."""

import os

# the Rust tokenizer's thread pool, sized before anything starts it: the job's cores
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

from infscale.data.prepare import tokenize_job
from infscale.hub import local_paths
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
params = snakemake.params
out = {key: snakemake.output[key] for key in ("train", "val", "meta")}
sidecar = tokenize_job(
    params.data,
    params.shards,
    snakemake.input.tokenizer,
    out,
    params.cache,
    params.seed,
    params.max_windows,
    provenance(snakemake.config),
    local_paths(snakemake.config)["data"],  # the hub mirror's copy of a hub dataset
)
print({key: sidecar[key] for key in ("documents", "windows", "tokens")})
