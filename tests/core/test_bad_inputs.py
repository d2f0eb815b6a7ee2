"""The table of bad inputs (issue 16): each mistake a new user makes in a config stops its
validation (which runs when the Snakefile is parsed, so also `snakemake -n`), and each mistake on
the command line exits 2; either way with one line that names the key or argument, and never a
traceback. Each table has a valid baseline run first, so that a case fails for its own reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run, snakemake

from infscale.checks import validate_config
from infscale.errors import InputError
from infscale.grid import candidate_runs

SCHEMA = REPO / "config" / "schema.yaml"


def _smallest_but_one_n(config: dict) -> int:
    return sorted(run.shape.n_params for run in candidate_runs(config))[1]


def _fit_set(rules: list[dict]):
    return lambda c: c["fit"]["sets"].update(bad=rules)


def _overrides(**keys):
    return lambda c: c["select"].update(train_overrides=keys)


# (change to the default config, text the one-line message must contain)
CONFIG_CASES = {
    "unknown eval task": (lambda c: c["eval"].update(tasks=["arc_easy", "jeopardy"]), "eval.tasks"),
    "hub-only task from packages": (lambda c: c["eval"].update(tasks=["wsc273"]), "eval.tasks"),
    "no eval task": (lambda c: c["eval"].update(tasks=[]), "eval.tasks"),
    "eval source": (lambda c: c["eval"].update(source="disk"), "eval.source"),
    "more shapes than a group has": (_fit_set([{"shapes_per_size": 5}]), "fit.sets.bad"),
    "more shapes than have the multiplier": (
        _fit_set([{"multipliers": [8], "shapes_per_size": 5}]),
        "fit.sets.bad: shapes_per_size 5 exceeds the 4 shape(s) of size group xs",
    ),
    "fit set of an unknown size": (_fit_set([{"sizes": ["xl"]}]), "fit.sets.bad"),
    "fit set key": (_fit_set([{"size": ["xs"]}]), "fit.sets.bad.0"),
    "parameter budget no candidate meets": (
        lambda c: c["select"].update(max_params=100_000),
        "select.max_params: 100,000 is below every candidate's N",
    ),
    "token budget below select.tokens": (
        lambda c: c["select"].update(max_tokens=1_000_000),
        "select.max_tokens: 1,000,000 is below select.tokens 1,200,000",
    ),
    "k above the candidates within the budgets": (
        lambda c: c["select"].update(max_params=_smallest_but_one_n(c) - 1),
        "select.k: 2 exceeds the 1 candidate(s) within select.max_params",
    ),
    "k above the candidates": (lambda c: c["select"].update(k=11), "select.k: 11 exceeds the 10"),
    "latency device gpu": (lambda c: c["latency"].update(device="gpu"), "latency.device"),
    "latency device cuda:x": (lambda c: c["latency"].update(device="cuda:x"), "latency.device"),
    "latency device in capitals": (lambda c: c["latency"].update(device="CPU"), "latency.device"),
    "interleave with vllm": (lambda c: c["latency"].update(backend="vllm"), "latency.interleave"),
    "latency backend": (lambda c: c["latency"].update(backend="trt"), "latency.backend"),
    "latency top_p": (lambda c: c["latency"].update(top_p=1.5), "latency.top_p"),
    "override typo": (_overrides(batch_sise=256), "select.train_overrides"),
    "override of the wrong type": (
        _overrides(batch_size="256"),
        "select.train_overrides.batch_size",
    ),
    "override out of range": (_overrides(lr=-1), "select.train_overrides.lr"),
    "override choice": (_overrides(dtype="fp16"), "select.train_overrides.dtype"),
    "train lr as text": (lambda c: c["train"].update(lr="3e-3"), "train.lr"),
    "train batch size zero": (lambda c: c["train"].update(batch_size=0), "train.batch_size"),
    "train unknown key": (lambda c: c["train"].update(warmup=20), "train"),
    "train betas": (lambda c: c["train"].update(betas=[0.9]), "train.betas"),
    "train checkpoint_every": (
        lambda c: c["train"].update(checkpoint_every=-1),
        "train.checkpoint_every",
    ),
    "validation fraction": (lambda c: c["data"].update(val_fraction=0.7), "data.val_fraction"),
    "data source": (lambda c: c["data"].update(source="web"), "data.source"),
    "hf source without data.hf": (lambda c: c["data"].update(source="hf"), "data.hf"),
    "pretrained tokenizer without a name": (
        lambda c: c["tokenizer"].update(kind="pretrained"),
        "tokenizer.name",
    ),
    "negative seed": (lambda c: c.update(seed=-1), "seed"),
    "selection law": (lambda c: c["select"].update(law="kaplan"), "select.law"),
    "no candidates": (lambda c: c["select"].update(candidates={}), "select.candidates"),
    "latency source": (
        lambda c: c["select"].update(latency_source="guess"),
        "select.latency_source",
    ),
    "measure_top zero": (lambda c: c["select"].update(measure_top=0), "select.measure_top"),
    "fit method": (lambda c: c["fit"].update(method="ols"), "fit.method"),
    "bootstrap negative": (lambda c: c["fit"].update(bootstrap=-1), "fit.bootstrap"),
    "model norm": (lambda c: c["model"].update(norm="batchnorm"), "model.norm"),
    "group heads zero": (lambda c: c["grid"]["sizes"]["xs"].update(n_heads=0), "grid.sizes.xs"),
}


def test_the_default_config_is_the_valid_baseline(config):
    assert validate_config(config, SCHEMA) == []


@pytest.mark.parametrize(("change", "message"), CONFIG_CASES.values(), ids=CONFIG_CASES)
def test_a_bad_config_stops_validation_naming_the_key(config, change, message):
    change(config)
    with pytest.raises(InputError) as caught:
        validate_config(config, SCHEMA)
    line = str(caught.value)
    assert line.startswith("config key ") and "\n" not in line
    assert message in line


def _tokenizer_dir(path: Path, size: int) -> Path:
    """A pretrained-style tokenizer directory whose vocabulary has ``size`` tokens."""
    from tokenizers import Tokenizer, models

    path.mkdir()
    vocab = {f"t{i}": i for i in range(size)}
    Tokenizer(models.WordLevel(vocab, unk_token="t0")).save(str(path / "tokenizer.json"))
    return path


def test_a_local_pretrained_tokenizer_larger_than_the_embedding_stops_the_parse(config, tmp_path):
    for size in (512, 600):
        bad = copy.deepcopy(config)
        name = str(_tokenizer_dir(tmp_path / f"tok{size}", size))
        bad["tokenizer"] = {"kind": "pretrained", "name": name}
        if size == 512:
            validate_config(bad, SCHEMA)  # fits model.vocab_size exactly
            continue
        with pytest.raises(InputError, match=r"model\.vocab_size: 512 is fewer than the 600"):
            validate_config(bad, SCHEMA)


def test_loss_points_inside_warmup_warn_but_pass(config):
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    (warning,) = validate_config(paper, SCHEMA)
    assert "warmup" in warning and "80M-v6 at 20N" in warning and "80M-v7 at 20N" in warning
    assert "339M" not in warning  # its 20N boundary is past the 2,000 warmup steps
    config["train"]["warmup_steps"] = 200  # the default grid's first boundary: xs at 4N
    (warning,) = validate_config(config, SCHEMA)
    assert "xs-v1 at 4N" in warning and "xs-v1 at 8N" not in warning


def test_the_schemas_device_pattern_is_the_protocols():
    from infscale.latency.protocol import DEVICE_PATTERN

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["latency"]["properties"]["device"]["pattern"] == DEVICE_PATTERN


# Through Snakemake itself: the same checks stop `snakemake -n` at parse time, with exit 2.
DRY_RUN_CASES = ["unknown eval task", "k above the candidates within the budgets", "override typo"]


@pytest.mark.parametrize("case", DRY_RUN_CASES)
def test_a_bad_config_stops_the_dry_run(default_config, tmp_path, case):
    change, message = CONFIG_CASES[case]
    bad = copy.deepcopy(default_config)
    change(bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake(tmp_path, "-n", configfile=path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    line = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert line.startswith("infscale: invalid config: config key ") and message in line


def test_the_warmup_warning_is_printed_once_by_the_dry_run(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["train"]["warmup_steps"] = 200
    path = tmp_path / "warm.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", configfile=path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("infscale: warning: loss points inside the learning-rate warmup") == 1


# The command line. Files the cases read: a valid fit, points and candidates.
FIT = {
    "law": "chinchilla",
    "method": "lm",
    "tie": "all",
    "params": {"A": 400.0, "B": 410.0, "E": 1.7, "alpha": 0.34, "beta": 0.28},
}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    points = pd.DataFrame(
        {"N": [1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6], "D": [2e6, 4e6, 8e6, 1.6e7, 3.2e7, 6.4e7]}
    )
    points["loss"] = 1.7 + 400 / points["N"] ** 0.34 + 410 / points["D"] ** 0.28
    candidates = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "d_model": [64, 96, 128],
            "n_layers": [4, 2, 1],
            "N": [3e5, 3.5e5, 4e5],
            "D": [1.2e6] * 3,
            "latency_s": [1.0, 0.8, 0.6],
        }
    )
    paths = {
        name: tmp_path / f"{name}.csv"
        for name in ("points", "candidates", "no_loss", "no_n", "no_latency")
    }
    points.to_csv(paths["points"], index=False)
    candidates.to_csv(paths["candidates"], index=False)
    points.drop(columns="loss").to_csv(paths["no_loss"], index=False)
    points.drop(columns="N").to_csv(paths["no_n"], index=False)
    candidates.drop(columns="latency_s").to_csv(paths["no_latency"], index=False)
    for name, fit in _fits().items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(fit if isinstance(fit, str) else json.dumps(fit))
    paths["out"] = tmp_path / "out"
    return paths


def _fits() -> dict[str, dict | str]:
    def with_params(**params):
        return {**FIT, "params": {**FIT["params"], **params}}

    no_e = {k: v for k, v in FIT["params"].items() if k != "E"}
    return {
        "fit": FIT,
        "fit_null": with_params(A=None),
        "fit_text": with_params(A="x"),
        "fit_nan": with_params(B=float("nan")),
        "fit_missing": {**FIT, "params": no_e},
        "fit_law": {**FIT, "law": "kaplan"},
        "fit_samples": {**FIT, "bootstrap": {"samples": {"A": [1.0]}}},
        "fit_broken": '{"law": "chinchilla", ',
    }


SHAPE = ["--d-model", "64", "--n-layers", "2", "--vocab-size", "512"]
LATENCY = ["latency", *SHAPE, "--n-heads", "4", "--out", "{out}"]
FIT_ARGS = ["fit", "--data", "{points}", "--law", "chinchilla", "--out", "{out}"]
PREDICT = ["predict", "--fit", "{fit}", "--data", "{points}", "--out", "{out}"]
SELECT = ["select", "--fit", "{fit}", "--candidates", "{candidates}", "--k", "2", "--out", "{out}"]


def _swap(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with the value of ``flag`` replaced."""
    i = args.index(flag)
    return [*args[: i + 1], value, *args[i + 2 :]]


def _drop(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


# (arguments, text the one-line message must contain)
CLI_CASES = {
    "params: d_model zero": (["params", *_swap(SHAPE, "--d-model", "0")], "--d-model"),
    "params: d_model text": (["params", *_swap(SHAPE, "--d-model", "wide")], "--d-model"),
    "params: no vocab size": (["params", *_drop(SHAPE, "--vocab-size")], "--vocab-size"),
    "params: heads not dividing": (["params", *SHAPE, "--n-heads", "5"], "n_heads 5"),
    "fit: negative seed": ([*FIT_ARGS, "--bootstrap", "3", "--seed", "-1"], "--seed"),
    "fit: seed text": ([*FIT_ARGS, "--seed", "one"], "--seed"),
    "fit: negative bootstrap": ([*FIT_ARGS, "--bootstrap", "-2"], "--bootstrap"),
    "fit: unknown law": (_swap(FIT_ARGS, "--law", "kaplan"), "--law"),
    "fit: no data file": (_swap(FIT_ARGS, "--data", "{out}.csv"), "no such file"),
    "fit: no loss column": (_swap(FIT_ARGS, "--data", "{no_loss}"), "loss"),
    "fit: unknown fit set": ([*FIT_ARGS, "--fit-set", "fit_all"], "--fit-set"),
    "fit: form of the wrong law": ([*FIT_ARGS, "--form", "additive"], "--form"),
    "predict: A null": (_swap(PREDICT, "--fit", "{fit_null}"), "param A"),
    "predict: A text": (_swap(PREDICT, "--fit", "{fit_text}"), "param A"),
    "predict: B not a number": (_swap(PREDICT, "--fit", "{fit_nan}"), "param B"),
    "predict: missing param": (_swap(PREDICT, "--fit", "{fit_missing}"), "params must be"),
    "predict: wrong law": (_swap(PREDICT, "--fit", "{fit_law}"), "law"),
    "predict: bad bootstrap samples": (_swap(PREDICT, "--fit", "{fit_samples}"), "samples"),
    "predict: not JSON": (_swap(PREDICT, "--fit", "{fit_broken}"), "not valid JSON"),
    "predict: no N column": (_swap(PREDICT, "--data", "{no_n}"), "{no_n}"),
    "select: A null": (_swap(SELECT, "--fit", "{fit_null}"), "param A"),
    "select: A text": (_swap(SELECT, "--fit", "{fit_text}"), "param A"),
    "select: missing param": (_swap(SELECT, "--fit", "{fit_missing}"), "params must be"),
    "select: k zero": (_swap(SELECT, "--k", "0"), "--k"),
    "select: k above the feasible": ([*SELECT, "--max-params", "3.2e5"], "fewer than k = 2"),
    "select: negative budget": ([*SELECT, "--max-params", "-5"], "--max-params"),
    "select: no latency column": (_swap(SELECT, "--candidates", "{no_latency}"), "latency_s"),
    "latency: device foo": ([*LATENCY, "--device", "foo"], "--device"),
    "latency: device gpu": ([*LATENCY, "--device", "gpu"], "--device"),
    "latency: negative seed": ([*LATENCY, "--seed", "-1"], "--seed"),
    "latency: zero trials": ([*LATENCY, "--trials", "0"], "--trials"),
    "latency: no heads": (_drop(LATENCY, "--n-heads"), "--n-heads"),
    "latency: top_p above 1": ([*LATENCY, "--top-p", "2"], "--top-p"),
    "latency: backend": ([*LATENCY, "--backend", "trt"], "--backend"),
    "compare: unknown law": (
        ["compare", "--data", "{points}", "--laws", "kaplan", "--out", "{out}"],
        "kaplan",
    ),
    "compare: no data file": (["compare", "--data", "{out}.csv", "--out", "{out}"], "no such file"),
    "compare: negative seed": (
        ["compare", "--data", "{points}", "--seed", "-1", "--out", "{out}"],
        "--seed",
    ),
    "no command": ([], "COMMAND"),
}


def _filled(args: list[str], files: dict[str, Path]) -> list[str]:
    names = {name: str(path) for name, path in files.items()}
    return [arg.format(**names) for arg in args]


def test_the_cli_baselines_succeed(capsys, files):
    for args in (["params", *SHAPE], FIT_ARGS, PREDICT, SELECT):
        code, _, err = run(capsys, *_filled(args, files))
        assert code == 0, (args, err)


@pytest.mark.parametrize(("args", "message"), CLI_CASES.values(), ids=CLI_CASES)
def test_a_bad_argument_exits_2_with_one_line_naming_it(capsys, files, args, message):
    code, out, err = run(capsys, *_filled(args, files))
    assert code == 2
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("infscale: error: ")
    assert _filled([message], files)[0] in lines[0]
    assert not files["out"].exists()
