"""The latency protocol: everything a latency number depends on besides the model.

One route from a config to a measurement: :meth:`Protocol.from_config` turns the config's
``latency`` section into a :class:`Protocol`, and every caller (the Snakemake scripts, the
``infscale latency`` command, whose flags are that section spelled on the command line) goes
through it. Its field defaults are the command's; where the config schema gives a latency key a
default too, the two agree (a test checks). The module imports no torch, so the command line
can read the defaults and choices at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from infscale.errors import InputError

BACKENDS = ("hf", "vllm")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEFAULT_MAX_POSITION = 2048  # the paper's context length
# The devices a measurement runs on (auto: the GPU if torch sees one); config/schema.yaml's
# latency.device pattern is this one, so that a config's typo stops at parse time.
DEVICE_PATTERN = "^(auto|cpu|cuda(:[0-9]+)?)$"
# The model a shape is timed as from random weights: the paper's latency protocol times
# Llama-architecture models (RMSNorm), whatever norm the grid trains with (model.norm); the
# rotary base does not change the time. A trained checkpoint is timed as it was trained.
TIMED_MODEL = {"norm": "rmsnorm", "rope_theta": 10000.0}
# The vLLM environment's interpreter (``make vllm-env``), relative to where the run starts: the
# repository root for the workflow.
VLLM_PYTHON = ".venv-vllm/bin/python"
# Keys of the config's latency section that arrange jobs, not what a measurement is.
LAYOUT_KEYS = frozenset(
    {"interleave", "sweeps", "throughput", "throughput_protocol", "engines", "threads"}
)


@dataclass(frozen=True)
class Protocol:
    """How a measurement is taken (docs/facts.md, "Latency protocol"), and its noise rule.

    ``max_cv``: a measurement whose CV (relative or absolute, see ``latency.measure``) exceeds it
    is timed again, at most ``max_repeats`` times, and flagged if it stays above; None: never.
    ``python``: the interpreter that runs the vllm backend where this process has no vLLM.
    """

    input_tokens: int = 128
    output_tokens: int = 256
    batch_size: int = 1
    trials: int = 5
    warmup: int = 1
    dtype: str = "auto"
    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.95
    device: str = "auto"
    seed: int = 0
    backend: str = "hf"
    max_position: int = DEFAULT_MAX_POSITION
    max_cv: float | None = None
    max_repeats: int = 0
    python: str = VLLM_PYTHON

    def check(self) -> None:
        for name in ("input_tokens", "output_tokens", "batch_size", "trials", "max_position"):
            value = getattr(self, name)
            if value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        for name in ("warmup", "max_repeats"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_cv is not None and self.max_cv <= 0:
            raise InputError(f"max_cv must be positive, got {self.max_cv}")
        if self.input_tokens + self.output_tokens > self.max_position:
            raise InputError(
                f"input_tokens + output_tokens = {self.input_tokens + self.output_tokens} "
                f"exceeds the position limit {self.max_position}"
            )
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not re.match(DEVICE_PATTERN, self.device):
            raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    @classmethod
    def from_config(cls, latency: dict[str, Any], seed: int = 0) -> Protocol:
        """The protocol of a config's ``latency`` section (``seed``: the config's top-level seed);
        keys it does not set take the defaults above. Checked."""
        names = {f.name for f in fields(cls)} - {"seed"}
        unknown = set(latency) - names - LAYOUT_KEYS
        if unknown:
            raise InputError(f"unknown latency setting(s): {', '.join(sorted(unknown))}")
        protocol = cls(seed=seed, **{k: latency[k] for k in names if k in latency})
        protocol.check()
        return protocol
