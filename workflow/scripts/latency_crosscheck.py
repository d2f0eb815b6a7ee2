"""Snakemake script: every candidate's measured throughput beside the analytic models (the
follow-up's FLOPs per token, the memory traffic of decoding), the shapes out of the memory
model's order flagged."""

from infscale.io import read_csv, write_csv, write_json
from infscale.latency.analytic import cross_check
from infscale.provenance import provenance
from infscale.script import start_script
from infscale.select.winner import measured_log_se
from infscale.shapes import Shape

start_script(snakemake.log[0])
measured = read_csv(snakemake.input[0])
fields = ("d_model", "n_layers", "n_heads", "vocab_size", "n_kv_heads", "ffn_hidden", "head_dim")
shapes = [Shape(**{f: int(row[f]) for f in fields}) for _, row in measured.iterrows()]
[protocol] = (
    measured[["input_tokens", "output_tokens", "dtype"]].drop_duplicates().to_dict("records")
)
table, agreement = cross_check(
    shapes,
    measured["tokens_per_s"].to_numpy(),
    batch_sizes=measured["batch_size"].to_numpy(),
    **protocol,
    log_se=measured_log_se(measured),
    z=snakemake.params.z,
)
write_csv(snakemake.output.table, table)
write_json(
    snakemake.output.summary,
    {**agreement, **protocol, "z": snakemake.params.z, "provenance": provenance(snakemake.config)},
)
print(table.to_string())
print(agreement)
for _, row in table[table["flagged"]].iterrows():
    print(f"{row['shape']}: measured out of the memory model's order with {row['departs_from']}")
