"""Progress of a long job in its log: tqdm's bar on a terminal, else a plain line every N seconds.

A rule's log is a file, where a bar redrawn with carriage returns turns into one unreadable line;
there the same numbers (count, rate, ETA where the total is known) are printed as whole lines,
formatted by tqdm all the same.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LINE_SECONDS = 30.0  # a plain line at most this often


class Progress:
    """Counts ``unit`` s (tokens) done toward ``total`` (None: unknown, no ETA)."""

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str = "tok",
        every_s: float = LINE_SECONDS,
        scale: bool = True,
    ) -> None:
        """``scale``: counts as 1.2M (tokens), not 1200000; off for a few rounds or items."""
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.scale = scale
        self.n = 0
        self.printed = -1  # the count of the last plain line
        self.start = self.last = time.monotonic()
        self.bar = (
            tqdm(total=total, desc=label, unit=unit, unit_scale=scale, file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )

    def update(self, n: int) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._print(now)

    def line(self, now: float) -> str:
        """``label: 45%|... | 1.2M/2.7M [00:10<00:12, 120k tok/s]`` (without the bar's graphics
        when the total is unknown)."""
        elapsed = now - self.start
        return tqdm.format_meter(
            self.n,
            self.total,
            elapsed,
            prefix=self.label,
            unit=self.unit,
            unit_scale=self.scale,
            ncols=100,
            ascii=True,
        )

    def close(self) -> None:
        """The final count and rate (unless the last line said them)."""
        if self.bar is not None:
            self.bar.close()
        elif self.printed != self.n:
            self._print(time.monotonic())

    def _print(self, now: float) -> None:
        self.printed = self.n
        print(self.line(now), file=sys.stderr, flush=True)
