"""Snakemake script: what the config needs from the Hugging Face hub, into the hub mirror, once
(the only step that reaches the hub; see infscale.hub)."""

from infscale.hub import stage
from infscale.io import write_json
from infscale.provenance import provenance
from infscale.script import start_script

start_script(snakemake.log[0], offline=False)
record = stage(snakemake.config)
write_json(snakemake.output[0], {**record, "provenance": provenance(snakemake.config)})
