"""benchmarks/design_sim.py end to end on three worlds per family (a few seconds), so that the
script cannot rot unnoticed (an import it lost once went unseen). The values asserted are ones its
table and summary line must satisfy whatever the worlds: accuracies that three worlds can give,
regret zero exactly where every top-1 is right, paired differences that equal the differences of
the accuracies, and the reach line that the table's own accuracies imply."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "design_sim.py"
WORLDS = 3
FAMILIES = ("inference", "conditional", "published")
ARGS = ("--outcomes", "20", "--families", *FAMILIES)  # 20 simulated outcomes: seconds
COLUMNS = ["design", "flops_vs_grid", "p_top1", "regret", "minus_grid", "minus_random"]
NUMBER = r"[-+]?[0-9.]+(?:e[-+][0-9]+)?"
ESTIMATE = rf"({NUMBER}) \[({NUMBER}), ({NUMBER})\]"
ROW = re.compile(
    rf"^\s*(design|grid|none|random)\s+({NUMBER})\s+{ESTIMATE}\s+{ESTIMATE}"
    rf"(?:\s+{ESTIMATE}\s+{ESTIMATE})?\s*$"
)


def fractions() -> tuple[float, ...]:
    spec = importlib.util.spec_from_file_location("design_sim", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FRACTIONS


@pytest.fixture(scope="module")
def printed() -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--worlds", str(WORLDS), "--workers", "1", *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def sections(printed: str) -> dict[str, list[str]]:
    """The printed lines of each family's section, by family."""
    found = {}
    for block in printed.split("\n## ")[1:]:
        lines = block.split("\n\n")[0].strip().splitlines()  # up to the "total" line
        found[lines[0].split(":")[0]] = lines
    return found


def test_every_family_prints_its_table_and_reach_line(printed):
    assert printed.splitlines()[0].startswith("families built in ")
    assert re.search(r"^total \d+ s$", printed, re.MULTILINE)
    by_family = sections(printed)
    assert list(by_family) == list(FAMILIES)
    for name, lines in by_family.items():
        assert lines[0].startswith(f"{name}: {WORLDS} worlds ")
        proposals, grid, grid_flops = re.fullmatch(
            rf"proposals (\d+), grid runs (\d+), grid FLOPs ({NUMBER})", lines[1]
        ).groups()
        assert int(proposals) >= int(grid) > 0 and float(grid_flops) > 0
        assert lines[2].split() == COLUMNS
        assert lines[-1].startswith("design reaches the grid's top-1 accuracy at ")


def test_the_table_values_are_consistent(printed):
    steps = fractions()
    for name, lines in sections(printed).items():
        rows = {}
        for line in lines[3:-1]:
            match = ROW.match(line)
            assert match, f"{name}: unparsed row {line!r}"
            design, fraction, *values = match.groups()
            rows[design, float(fraction)] = [float(v) for v in values if v is not None]
        expected = {("none", 0.0), ("grid", 1.0)}
        expected |= {(d, f) for d in ("design", "random") for f in steps}
        assert set(rows) == expected, name
        accuracy = {key: values[0] for key, values in rows.items()}
        for key, values in rows.items():
            p, p_lo, p_hi, regret, r_lo, r_hi = values[:6]
            # P(top-1) over 3 worlds: 0, 1/3, 2/3 or 1; its bootstrap interval around it
            assert abs(p * WORLDS - round(p * WORLDS)) < 0.01, (name, key)
            assert 0 <= p_lo <= p <= p_hi <= 1, (name, key)
            assert 0 <= r_lo <= regret <= r_hi, (name, key)
            assert (regret == 0) == (p == 1), (name, key)  # a wrong top-1 costs true loss
            if key[0] == "design":  # paired by world: the mean difference is the difference
                minus_grid, minus_random = values[6], values[9]
                assert minus_grid == pytest.approx(p - accuracy["grid", 1.0], abs=0.0015)
                assert minus_random == pytest.approx(p - accuracy["random", key[1]], abs=0.0015)
            else:
                assert len(values) == 6, (name, key)
        reached = [f for f in steps if accuracy["design", f] >= accuracy["grid", 1.0]]
        point = re.search(r"accuracy at (\S+) of its FLOPs", lines[-1]).group(1)
        assert float(point) == (reached[0] if reached else float("inf")), name
