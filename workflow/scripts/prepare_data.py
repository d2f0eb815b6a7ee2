"""Snakemake script: training text → train/validation split → tokenizer → packed windows."""

import sys

from infscale.data.prepare import prepare_data
from infscale.errors import InputError
from infscale.io import log_output_to, write_json
from infscale.provenance import provenance

log_output_to(snakemake.log[0])
params = snakemake.params
out = {key: snakemake.output[key] for key in ("tokenizer", "train", "val")}
try:
    summary = prepare_data(params.data, params.tokenizer, out, params.cache, params.seed)
except InputError as err:
    print(f"infscale: error: {' '.join(str(err).split())}", file=sys.stderr)
    sys.exit(2)
summary["provenance"] = provenance(snakemake.config)
write_json(snakemake.output.meta, summary)
print(summary)
