"""Snakemake script: the gather, every tokenization job's files in results/data/manifest.json."""

from infscale.data.manifest import write_manifest
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0])
manifest = write_manifest(
    snakemake.input.jobs,
    snakemake.input.tokenizer,
    snakemake.output[0],
    snakemake.params.data,
    provenance(snakemake.config),
)
print({key: manifest[key] for key in ("documents", "windows", "tokens")})
