"""The experiment grid: config → the training runs and the shapes to time.

Two protocols (DESIGN.md): ``paper`` trains one run per shape to its largest multiplier and
reads a loss point at every multiplier boundary (cosine over the whole run, as the authors did);
``independent`` trains a separate run per multiplier, each with its own schedule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from infscale.errors import InputError
from infscale.shapes import Shape

# The size group of the selection's candidates (their runs' ``size``, their points'
# ``size_group``): what tells a trained candidate from a grid run downstream.
CANDIDATES = "candidates"


@dataclass(frozen=True)
class Run:
    """One training run: a shape trained to ``tokens[-1]`` tokens, points read at each boundary."""

    name: str
    size: str
    variant: str
    shape: Shape
    multipliers: tuple[int, ...]
    tokens: tuple[int, ...]

    @property
    def total_tokens(self) -> int:
        return self.tokens[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain data, so a rule can pass the run as a param (and rerun when it changes)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        fields = {**data, "shape": Shape(**data["shape"])}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def boundary_steps(run: Run, tokens_per_step: int) -> list[int]:
    """The step count at which each multiplier's token budget is first reached."""
    return [math.ceil(tokens / tokens_per_step) for tokens in run.tokens]


def model_shape(spec: dict[str, Any], config: dict[str, Any], where: str) -> Shape:
    """The shape ``spec`` describes; ``where`` names it in the error of a bad shape. n_kv_heads
    and ffn_hidden are optional keys of a shape (the schema's shape), absent: their defaults."""
    model = config["model"]
    try:
        return Shape(
            d_model=spec["d_model"],
            n_layers=spec["n_layers"],
            n_heads=spec["n_heads"],
            vocab_size=model["vocab_size"],
            multiple_of=model["multiple_of"],
            n_kv_heads=spec.get("n_kv_heads"),
            ffn_hidden=spec.get("ffn_hidden"),
        )
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def grid_runs(config: dict[str, Any]) -> list[Run]:
    """Every training run of the grid, in config order."""
    protocol = config["train"]["protocol"]
    runs = []
    for size, group in config["grid"]["sizes"].items():
        for variant, spec in group["variants"].items():
            name = f"{size}-{variant}"
            where = f"config key grid.sizes.{size}.variants.{variant} (run {name})"
            shape = model_shape({"n_heads": group["n_heads"], **spec}, config, where)
            mults = tuple(sorted(spec.get("multipliers", group["multipliers"])))
            if protocol == "paper":
                runs.append(make_run(name, size, variant, shape, mults))
            else:
                runs += [make_run(f"{name}-{m}x", size, variant, shape, (m,)) for m in mults]
    return runs


def candidate_runs(config: dict[str, Any]) -> list[Run]:
    """The selection's candidates, each trained (if selected) to ``select.tokens`` tokens."""
    tokens = config["select"]["tokens"]
    return [
        Run(
            f"{CANDIDATES}/{name}",
            CANDIDATES,
            name,
            model_shape(spec, config, f"config key select.candidates.{name}"),
            (),
            (tokens,),
        )
        for name, spec in config["select"]["candidates"].items()
    ]


def run_table(config: dict[str, Any]) -> dict[str, Run]:
    """All runs (grid and candidates) by name; names are unique by construction of the config."""
    table = {}
    for run in grid_runs(config) + candidate_runs(config):
        if run.name in table:
            raise InputError(f"run name {run.name!r} appears twice in the config")
        table[run.name] = run
    return table


def latency_shapes(config: dict[str, Any]) -> dict[str, Shape]:
    """Distinct shapes to time: every grid shape and every candidate."""
    runs = grid_runs(config) + candidate_runs(config)
    return {run.shape.label: run.shape for run in runs}


def make_run(name: str, size: str, variant: str, shape: Shape, mults: tuple[int, ...]) -> Run:
    """A run of ``shape`` trained to its largest multiplier, with a point at each."""
    if not mults or min(mults) <= 0:
        raise InputError(f"{name}: token multipliers must be positive, got {list(mults)}")
    return Run(name, size, variant, shape, mults, tuple(m * shape.n_params for m in mults))
