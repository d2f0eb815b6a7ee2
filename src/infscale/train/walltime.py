"""The wall time a cluster training job asks the scheduler for (the SLURM profile's ``runtime``).

6·N·D FLOPs on one A100 (312 TFLOP/s bf16) at an assumed 30 % utilisation, plus 20 minutes for
start-up and checkpoints, times 1.5 per retry: a job that ran out of time gets more on its next
attempt. On one GPU it bounds a multi-GPU job from above. No torch import: the Snakefile calls
it while it plans.
"""

from __future__ import annotations

A100_BF16_FLOPS = 312e12
ASSUMED_MFU = 0.30
STARTUP_MINUTES = 20
RETRY_GROWTH = 0.5


def train_minutes(n_params: int, tokens: int, attempt: int = 1) -> int:
    """Minutes for training an ``n_params`` model on ``tokens`` tokens, at try ``attempt``."""
    compute = 6 * n_params * tokens / (A100_BF16_FLOPS * ASSUMED_MFU) / 60
    return int((STARTUP_MINUTES + compute) * (1 + RETRY_GROWTH * (attempt - 1)))
