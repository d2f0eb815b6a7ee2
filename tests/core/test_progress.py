"""Progress lines in a log (no terminal): whole lines with count, rate and ETA."""

from __future__ import annotations

import re

from infscale.progress import Progress


def test_without_a_terminal_progress_prints_plain_lines_with_rate_and_eta(capsys):
    progress = Progress("tokenize 0003", total=1_000_000, every_s=0.0)
    for _ in range(5):
        progress.update(200_000)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5  # one per update (every_s 0); the last said the final count
    assert "\r" not in "".join(lines)
    assert all(line.startswith("tokenize 0003:") for line in lines)
    meter = r"\b800k/1\.00M \[\d\d:\d\d<\d\d:\d\d, [\d.]+[kMG]?tok/s\]"
    assert re.search(meter, lines[3]), lines[3]
    assert "100%" in lines[-1]


def test_an_unknown_total_prints_count_and_rate_only(capsys):
    progress = Progress("tokenize 0000", total=None, every_s=3600.0)
    progress.update(1234)  # within every_s of the start: no line yet
    progress.close()
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"tokenize 0000: 1\.23ktok \[\d\d:\d\d, [\d.]+[kMG]?tok/s\]", line), line
