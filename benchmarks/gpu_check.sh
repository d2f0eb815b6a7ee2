#!/usr/bin/env bash
# benchmarks/gpu_check.py on a CUDA machine that has torch, transformers, pandas, scipy, pyyaml,
# safetensors, tokenizers, tqdm and tensorboard but no network (this workplace's H200 image).
# The project runs from src/ (PYTHONPATH, nothing to build); what the image lacks is
# jsonschema (config validation) and its three dependencies, carried as wheels (~0.5 MB).
# vLLM's wheel is far too large to carry, so the vllm latency backend is not checked.
#
#   benchmarks/gpu_check.sh wheels          here, with a package index: the wheels, into .whl/
#   benchmarks/gpu_check.sh [ARGS...]       there: install .whl/ into /tmp/site, run the check
#                                           (ARGS go to gpu_check.py: --out, --quick, --sections)
#
# The whole check is capped at 8 minutes (each section also has its own cap: Mode.caps in gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1)

if [[ "${1:-}" == wheels ]]; then
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    exit
fi

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec timeout --signal=INT 480 python3 benchmarks/gpu_check.py "$@"
