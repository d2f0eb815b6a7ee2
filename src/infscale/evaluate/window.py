"""lm-eval's Hugging Face model, scored within the context length the model was trained on.

What lm-eval 0.4.13 does (``HFLM._loglikelihood_tokens``, lm_eval/models/huggingface.py): a causal
model is fed ``(context_enc + continuation_enc)[-(max_length + 1):][:-1]`` and the continuation's
log-probabilities are read off its last ``len(continuation_enc)`` positions, so a long context is
cut from the left and the continuation is kept whole; but it asserts
``len(continuation_enc) <= max_length``, so an answer longer than the window fails the whole run
(PIQA solutions reach 1,065 bytes, over 128 tokens with a 512-token BPE). :class:`TrainedContextLM`
splits such a continuation into consecutive pieces of at most ``max_length`` tokens, each scored
after the text before it (left-truncated by lm-eval as above), and sums them: the disjoint windows
lm-eval's own ``loglikelihood_rolling`` uses for perplexity. Imports lm-eval: load it lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from lm_eval.models.huggingface import HFLM

Request = tuple[tuple[str, str] | None, list[int], list[int]]
TRUNCATION_WARNING = "exceeds model's maximum length"  # lm-eval's, logged once per request


class TrainedContextLM(HFLM):
    """HFLM that scores continuations longer than ``max_length`` in windows, and counts, instead
    of logging one warning per request, the requests whose context was cut from the left."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.requests = 0
        self.truncated = 0  # requests whose context + continuation exceed max_length + 1 tokens
        self.windowed = 0  # of which the continuation alone exceeds max_length

    def _loglikelihood_tokens(
        self,
        requests: list[Request],
        disable_tqdm: bool = False,
        override_bs: int | None = None,
    ) -> list[tuple[float, bool]]:
        pieces, counts = [], []
        self.requests += len(requests)
        for key, context, continuation in requests:
            self.truncated += len(context) + len(continuation) > self.max_length + 1
            starts = range(0, len(continuation), self.max_length)
            self.windowed += len(starts) > 1
            counts.append(len(starts))
            # A split request has no one cache key (as in lm-eval's loglikelihood_rolling).
            pieces += [
                (
                    key if len(starts) == 1 else None,
                    context + continuation[:s],
                    continuation[s : s + self.max_length],
                )
                for s in starts
            ]
        with _quiet_truncation():
            scores = iter(super()._loglikelihood_tokens(pieces, disable_tqdm, override_bs))
        out = []
        for count in counts:
            parts = [next(scores) for _ in range(count)]
            out.append((sum(ll for ll, _ in parts), all(greedy for _, greedy in parts)))
        return out


@contextmanager
def _quiet_truncation() -> Iterator[None]:
    """Drop lm-eval's per-request truncation warning (counted instead): at a 128-token context
    most BoolQ passages are truncated, thousands of lines per run."""
    logger = logging.getLogger(HFLM.__module__)

    def keep(record: logging.LogRecord) -> bool:
        return TRUNCATION_WARNING not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
