"""Hub assets staged once (infscale.hub, rule stage_hub), and the data stage reading the mirror
with the hub switched off.

No hub is reachable here, so the mirror is laid out by the test in the layout staging writes:
DCLM's ``.jsonl.zst`` files, named by the same brace ranges as config/paper.yaml's
``data.hf.data_files`` (640 files), and a pretrained-style tokenizer under its hub id. The
workflow then runs with ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``, a dead ``HF_ENDPOINT``
and every internet socket refused (a ``sitecustomize`` that records any attempt).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import MICRO, REPO, offline_env, snakemake_cmd
from hub_mirror import DCLM, write_dclm, write_tokenizer

from infscale.data.shards import source_shards
from infscale.errors import InputError
from infscale.hub import dataset_dir, hub_needs, local_paths, stage, tokenizer_dir

TOKENIZER = "test-org/tiny-bpe"  # a hub id, as config/paper.yaml names EleutherAI/gpt-neox-20b
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def _doc(shard: int, i: int) -> str:
    words = " ".join(f"w{(shard * 7 + i * 3 + k) % 97}" for k in range(60))
    return f"Document {i} of shard {shard}.\n\n{words}\n\n{words[::-1]}"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub mirror: paper.yaml's 640 DCLM file names (6 small documents each) and a BPE saved
    as a transformers tokenizer under its hub id."""
    root = tmp_path_factory.mktemp("hub")
    names = source_shards({"source": "hf", "hf": PAPER["data"]["hf"]})
    assert len(names) == 640
    # document j goes to file j % 640: file s holds _doc(s, 0), ..., _doc(s, 5)
    write_dclm(root, names, [_doc(j % 640, j // 640) for j in range(6 * 640)])
    corpus = [_doc(s, i) for s in range(20) for i in range(3)]
    write_tokenizer(root, TOKENIZER, corpus, vocab_size=300)
    return root


def hub_config(mirror: Path, cache: Path, **hub: object) -> dict:
    """The micro config reading paper.yaml's data files and a pretrained tokenizer from the hub."""
    config = yaml.safe_load(MICRO.read_text())
    config["cache_dir"] = str(cache)
    config["data"] = {
        **config["data"],
        "source": "hf",
        "val_fraction": 0.3,  # a validation window from job 0000's 30 short documents
        "hf": {**copy.deepcopy(PAPER["data"]["hf"]), "path": DCLM},
        "jobs": 128,
        "max_documents": None,
        "max_tokens": None,
    }
    config["tokenizer"] = {"kind": "pretrained", "name": TOKENIZER}
    config["hub"] = {"mirror": str(mirror), "download": False, **hub}
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, configfile: Path, env: dict[str, str]):
    cmd = snakemake_cmd(workdir, *args, configfile=configfile)
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_what_paper_yaml_needs_from_the_hub(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    needs = hub_needs(config)
    assert needs.dataset == DCLM and len(needs.data_files) == 640
    assert needs.data_files[0] == (
        "global-shard_01_of_10/local-shard_0_of_10/shard_00000000_processed.jsonl.zst"
    )
    assert needs.tokenizer == "EleutherAI/gpt-neox-20b"
    assert needs.tasks == PAPER["eval"]["tasks"]
    config["hub"] = {"mirror": str(tmp_path / "m")}
    paths = local_paths(config)
    assert paths["data"] == str(tmp_path / "m" / "datasets" / DCLM)
    assert paths["tokenizer"] == str(tmp_path / "m" / "models" / "EleutherAI/gpt-neox-20b")
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert not hub_needs(default)  # packages and a BPE: no staging step at all


def test_data_stage_tokenizes_from_the_mirror_with_the_hub_off(
    mirror: Path, tmp_path: Path
) -> None:
    """stage_hub (verifying: hub.download false), the tokenizer and tokenization job 0000 (paper
    .yaml's first 5 of 640 files) run through Snakemake offline and read only the mirror."""
    config = write_config(tmp_path / "hub.yaml", hub_config(mirror, tmp_path / "cache"))
    env = offline_env(tmp_path)
    work = tmp_path / "work"
    proc = snakemake(
        work, "--cores", "1", "results/data/shards/0000.json", configfile=config, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    network = tmp_path / "network.log"
    assert not network.exists(), network.read_text()  # no job tried a connection
    staged = json.loads((work / "results/hub/staged.json").read_text())
    assert staged["data"]["files"] == 640 and staged["data"]["downloaded"] == 0
    assert staged["tokenizer"]["downloaded"] is False
    sidecar = json.loads((work / "results/data/shards/0000.json").read_text())
    assert sidecar["shards"] == source_shards(hub_config(mirror, tmp_path)["data"])[:5]
    assert sidecar["documents"]["train"] > 0 and sidecar["windows"]["train"] > 0
    mirrored = json.loads((tokenizer_dir(mirror, TOKENIZER) / "tokenizer.json").read_text())
    built = json.loads((work / "results/data/tokenizer/tokenizer.json").read_text())
    assert built["model"]["vocab"] == mirrored["model"]["vocab"]  # the mirror's tokenizer


def test_staging_over_present_files_downloads_nothing(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With hub.download true and every file there, no hub API is called."""
    import huggingface_hub

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("staging asked the hub for a file already in the mirror")

    for name in ("hf_hub_download", "snapshot_download", "HfApi"):
        monkeypatch.setattr(huggingface_hub, name, refuse)
    config = hub_config(mirror, tmp_path, download=True)
    config["eval"]["source"] = "packages"
    record = stage(config, log=open(os.devnull, "w"))  # noqa: SIM115
    assert record["data"] == {
        "repo": DCLM,
        "dir": str(dataset_dir(mirror, DCLM)),
        "files": 640,
        "downloaded": 0,
        "revision": None,
    }
    assert record["tokenizer"]["downloaded"] is False


def test_a_file_missing_from_a_given_mirror_stops_staging_in_one_line(
    mirror: Path, tmp_path: Path
) -> None:
    last = dataset_dir(mirror, DCLM) / (
        "global-shard_01_of_10/local-shard_9_of_10/shard_00000063_processed.jsonl.zst"
    )
    aside = tmp_path / "aside.zst"
    last.rename(aside)
    try:
        with pytest.raises(InputError, match=r"shard_00000063_processed.jsonl.zst: data file"):
            stage(hub_config(mirror, tmp_path))
        config = write_config(tmp_path / "hub.yaml", hub_config(mirror, tmp_path / "cache"))
        work = tmp_path / "work"
        proc = snakemake(
            work,
            "--cores",
            "1",
            "results/hub/staged.json",
            configfile=config,
            env=offline_env(tmp_path),
        )
    finally:
        aside.rename(last)
    assert proc.returncode != 0
    assert "exit status 2" in proc.stderr
    log = (work / "results/logs/stage_hub.log").read_text().splitlines()
    assert log == [
        f"infscale: error: {last}: data file of {DCLM} (1 of 640 missing) missing from the "
        "hub mirror (hub.download is false)"
    ]
    assert not (work / "results/hub/staged.json").exists()
