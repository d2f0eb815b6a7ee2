"""Snakemake script: the tokenizer, trained (BPE) or loaded (pretrained) once, before the jobs."""

from infscale.data.prepare import prepare_tokenizer
from infscale.hub import local_paths
from infscale.script import start_script

start_script(snakemake.log[0])
params = snakemake.params
# model.vocab_size only checks the tokenizer (a param would rerun the data stage when it changes)
model_vocab = snakemake.config["model"]["vocab_size"]
out = snakemake.output[0]
tokenizer = prepare_tokenizer(
    params.data,
    params.tokenizer,
    out,
    params.cache,
    params.seed,
    model_vocab,
    local_paths(snakemake.config),
)
print(f"tokenizer: {len(tokenizer):,} tokens, saved to {out}")
