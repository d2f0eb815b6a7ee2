import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from infscale.checks import validate_config
from infscale.errors import InputError
from infscale.fit.fitsets import in_set
from infscale.grid import candidate_runs, grid_runs, latency_shapes

SCHEMA = REPO / "config" / "schema.yaml"


def test_default_config_is_valid_and_follows_the_paper_pattern(default_config):
    validate_config(default_config, SCHEMA)
    sizes = default_config["grid"]["sizes"]
    assert len(sizes) >= 3
    assert all(len(group["variants"]) >= 3 for group in sizes.values())
    base = min(min(g["multipliers"]) for g in sizes.values())
    assert all(base in g["multipliers"] for g in sizes.values())
    smallest = min(grid_runs(default_config), key=lambda run: run.shape.n_params).size
    assert max(sizes[smallest]["multipliers"]) > base  # the smallest group is over-trained
    largest_grid = max(run.shape.n_params for run in grid_runs(default_config))
    assert min(run.shape.n_params for run in candidate_runs(default_config)) > largest_grid
    assert default_config["select"]["k"] >= 2


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_random_fit_sets_are_distinct_trials(name):
    """Two seeds drawing the same shapes would make one of the paper's three trials a repeat."""
    import yaml

    config = yaml.safe_load((REPO / "config" / name).read_text())
    points = pd.DataFrame(
        {
            "size_group": run.size,
            "d_model": run.shape.d_model,
            "n_layers": run.shape.n_layers,
            "multiplier": mult,
        }
        for run in grid_runs(config)
        for mult in run.multipliers
    )
    draws = [
        tuple(in_set(points, rules))
        for set_name, rules in config["fit"]["sets"].items()
        if set_name.startswith("random")
    ]
    assert len(draws) == 3 and len(set(draws)) == 3


def test_paper_config_has_the_31_shapes_with_exact_n():
    import yaml

    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate_config(config, SCHEMA)
    runs = grid_runs(config)
    assert len(runs) == 31
    expected = {
        "80M-v1": (78_914_048, (20, 40, 160)),
        "116M-v6": (114_793_440, (20,)),
        "339M-v1": (339_182_208, (20, 160)),
    }
    by_name = {run.name: run for run in runs}
    for name, (n, mults) in expected.items():
        assert by_name[name].shape.n_params == n
        assert by_name[name].multipliers == mults
        assert by_name[name].tokens[-1] == mults[-1] * n
    assert len(latency_shapes(config)) == 31 + 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["train"].update(lr=-1), "train.lr"),
        (lambda c: c["train"].update(protocol="bogus"), "train.protocol"),
        (lambda c: c["grid"]["sizes"]["xs"].update(multipliers=[]), "grid.sizes.xs.multipliers"),
        (lambda c: c["latency"].update(trials=1), "latency.trials"),
        (lambda c: c["select"].update(fit_set="nope"), "select.fit_set"),
        (lambda c: c["select"].update(baseline="zz"), "select.baseline"),
        (lambda c: c["tokenizer"].update(vocab_size=600), "tokenizer.vocab_size"),
        (lambda c: c["train"].update(micro_batch_size=5), "train.micro_batch_size"),
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["grid"]["sizes"]["xs"]["variants"]["v1"].update(d_model=26), "xs-v1"),
        (lambda c: c["data"].update(max_tokens=1_000_000), "data.max_tokens: 1,000,000 is fewer"),
        (lambda c: c["select"].update(latency_source="measure_top"), "latency.interleave"),
        (lambda c: c["latency"].update(interleave="yes"), "latency.interleave"),
        (lambda c: (c["fit"].update(method="vp"), c["select"].update(law="conditional")), "vp"),
    ],
)
def test_bad_values_name_the_key(config, change, message):
    change(config)
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        validate_config(config, SCHEMA)


def test_snakemake_stops_on_a_bad_config_with_one_line(tmp_path, default_config):
    import yaml

    bad = dict(default_config, train={**default_config["train"], "lr": -1})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    expected = "config key train.lr: -1 is less than or equal to the minimum of 0"
    assert lines[-1] == f"infscale: invalid config: {expected}"


def _schema_keys(schema: dict, prefix: str = "", defs: dict | None = None):
    """(dotted key, subschema) of every named property, sections and nested objects included;
    a section that is a ``$ref`` to ``$defs`` (train) has the properties of its definition."""
    defs = schema["$defs"] if defs is None else defs
    target = defs.get(schema.get("$ref", "").removeprefix("#/$defs/"), {})
    properties = dict(target.get("properties") or {})
    for name, sub in (schema.get("properties") or {}).items():
        properties[name] = {**properties.get(name, {}), **sub}
    for name, sub in properties.items():
        yield f"{prefix}{name}", sub
        yield from _schema_keys(sub, f"{prefix}{name}.", defs)


def _yaml_scalar(value) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def test_config_readme_documents_every_key_and_the_schema_defaults():
    """The schema is the one place a default lives; the README must say the same."""
    import re

    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    rows = [line for line in (REPO / "config" / "README.md").read_text().splitlines()]
    rows = [line for line in rows if line.startswith("| `")]
    documented = {key for line in rows for key in re.findall(r"`([a-z_.<>]+)`", line.split("|")[1])}
    sections = set(schema["properties"])
    for key, sub in _schema_keys(schema):
        parts = key.split(".")
        ancestors = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        inside = any(doc.startswith(f"{key}.") for doc in documented)
        assert key in sections or ancestors & documented or inside, f"{key}: not in README"
        default = sub.get("default")
        if "default" in sub and not isinstance(default, dict | list):
            row = next(line for line in rows if f"`{key}`" in line.split("|")[1])
            name = parts[-1]
            said = re.search(rf"Defaults?:?[^|]*?(?:{name} )?`([^`]+)`", row)
            assert said, f"config/README.md row of {key} states no default"
            mentioned = re.findall(r"`([^`]+)`", row[row.index("Default") :])
            assert _yaml_scalar(default) in mentioned, f"{key}: schema default {default!r}"


def test_validation_fills_every_schema_default(default_config):
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    for key, sub in _schema_keys(schema):
        if "default" not in sub or key.startswith("grid."):
            continue
        if key.startswith("data.hf.") and "hf" not in default_config["data"]:
            continue  # inside a section the default config has not (filled where it is)
        value = default_config
        for part in key.split("."):
            value = value[part]  # a KeyError here is a default validation did not fill
    bare = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    del bare["fit"]["bootstrap"], bare["model"]["norm"]
    validate_config(bare, SCHEMA)
    assert bare["fit"]["bootstrap"] == 200 and bare["model"]["norm"] == "layernorm"
    assert bare["train"]["parallel"] == "ddp" and bare["select"]["train_overrides"] == {}


def test_the_latency_protocols_defaults_agree_with_the_schemas():
    """The protocol's field defaults are the `infscale latency` command's; a config's latency
    section takes the schema's. The two must not drift apart."""
    from dataclasses import MISSING, fields

    import yaml

    from infscale.latency.protocol import Protocol

    section = yaml.safe_load(SCHEMA.read_text())["properties"]["latency"]["properties"]
    shared = [f for f in fields(Protocol) if f.name in section and "default" in section[f.name]]
    assert len(shared) >= 5
    for field in shared:
        assert field.default is not MISSING
        assert section[field.name]["default"] == field.default, field.name


def test_the_latency_commands_defaults_are_the_protocols():
    """`infscale latency`'s flags are the config's latency section: each defaults to the
    protocol's field of that name (--greedy: not do_sample)."""
    from dataclasses import fields

    from infscale.cli import _parser
    from infscale.latency.protocol import Protocol

    parser = _parser()
    latency = next(
        action.choices["latency"]
        for action in parser._actions
        if getattr(action, "choices", None) and "latency" in action.choices
    )
    defaults = {action.dest: action.default for action in latency._actions}
    protocol = Protocol()
    flagged = [f.name for f in fields(Protocol) if f.name in defaults]
    assert set(flagged) == {f.name for f in fields(Protocol)} - {"do_sample"}
    for name in flagged:
        assert defaults[name] == getattr(protocol, name), name
    assert defaults["greedy"] is (not protocol.do_sample)


def test_the_norm_and_rotary_base_have_one_default_each():
    """A trained model takes model.norm and model.rope_theta from the config (the schema's
    default: layernorm); build_model has no default of its own; a random-weight latency
    measurement names its model explicitly: the paper's Llama (RMSNorm)."""
    import inspect

    import torch
    import yaml
    from transformers import LlamaForCausalLM

    from infscale.latency.measure import Item, load_model
    from infscale.latency.protocol import TIMED_MODEL, Protocol
    from infscale.shapes import Shape
    from infscale.train.model import build_model, layernorm_config, llama_config

    model = yaml.safe_load(SCHEMA.read_text())["properties"]["model"]["properties"]
    assert model["norm"]["default"] == "layernorm" and "default" not in model["rope_theta"]
    for function, names in (
        (build_model, ("norm", "rope_theta")),
        (llama_config, ("rope_theta",)),
        (layernorm_config, ("rope_theta",)),
    ):
        parameters = inspect.signature(function).parameters
        assert all(parameters[n].default is inspect.Parameter.empty for n in names), function
    assert TIMED_MODEL["norm"] == "rmsnorm"
    timed = load_model(Item(Shape(32, 2, 4, 300, 16), 1), Protocol(), torch.float32)
    assert isinstance(timed, LlamaForCausalLM)
    assert timed.config.rope_parameters["rope_theta"] == TIMED_MODEL["rope_theta"]


def test_vllm_engines_interleave_on_a_cpu_but_not_where_a_gpu_may_serve(config):
    """Each vLLM engine on a GPU takes most of its memory, so shapes interleaved in one process
    cannot each hold one; on a CPU an engine's KV cache is a small host buffer."""
    config["latency"].update(backend="vllm", interleave=True, device="cpu")
    validate_config(config, SCHEMA)
    config["latency"]["device"] = "auto"  # a GPU where torch sees one
    with pytest.raises(InputError, match=r"latency\.interleave: true .* or latency\.device to cpu"):
        validate_config(config, SCHEMA)
