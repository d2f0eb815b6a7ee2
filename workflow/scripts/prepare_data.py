"""Snakemake script: training text → train/validation split → tokenizer → packed windows."""

from infscale.corpus import load_texts, split_documents
from infscale.io import log_output_to, write_json
from infscale.provenance import provenance
from infscale.tokenizer import build_tokenizer
from infscale.tokens import pack

log_output_to(snakemake.log[0])
params = snakemake.params
data = params.data
docs = list(load_texts(data, params.cache))
train_docs, val_docs = split_documents(docs, data["val_fraction"], params.seed)
tokenizer = build_tokenizer(params.tokenizer, train_docs, snakemake.output.tokenizer, params.cache)
windows = {
    split: pack(tokenizer, split_docs, snakemake.output[split], data["seq_len"])
    for split, split_docs in (("train", train_docs), ("val", val_docs))
}
summary = {
    "documents": {"train": len(train_docs), "val": len(val_docs)},
    "windows": windows,
    "tokens": {split: n * data["seq_len"] for split, n in windows.items()},
    "seq_len": data["seq_len"],
    "vocab_size": len(tokenizer),
    "provenance": provenance(snakemake.config),
}
write_json(snakemake.output.meta, summary)
print(summary)
