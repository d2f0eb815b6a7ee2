"""The import graph of src/infscale, read with ``ast``: data flows one way (config → data →
train → {latency, evaluate} → fit → select → {design, report}), so no module imports one
further down that chain; and parsing the Snakefile imports no report code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ENV, MICRO, REPO

SRC = REPO / "src"
# Each stage's place along the data flow; the core modules (config, grid, shapes, io, ...) are
# the ground floor (0), the entry points that gather every stage sit above them all.
STAGES = {
    "data": 1,
    "train": 2,
    "latency": 3,
    "evaluate": 3,
    "fit": 4,
    "select": 5,
    "design": 6,  # which runs to train next: reads a fit and solves selections
    "report": 6,
}
ABOVE = {"cli", "checks", "plan", "hub"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def level(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return STAGES.get(part, len(STAGES) + 1 if part in ABOVE else 0)


def imported(source: str, modules: set[str]) -> set[str]:
    """The infscale modules a Python source imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in (SRC / "infscale").rglob("*.py")}
    return {m: imported(p.read_text(), set(paths)) - {m} for m, p in paths.items()}


def test_no_import_runs_back_up_the_data_flow():
    graph = import_graph()
    assert "infscale.config" in graph and "infscale.report.tables" in graph
    up = sorted((a, b) for a, edges in graph.items() for b in edges if level(b) > level(a))
    assert up == []
    assert graph["infscale.config"] <= {"infscale.errors"}  # the ground floor


def test_the_level_rule_sees_an_arrow_up():
    graph = {"infscale.config": {"infscale.latency.sweeps"}, "infscale.fit.laws": {"infscale.io"}}
    up = [(a, b) for a, edges in graph.items() for b in edges if level(b) > level(a)]
    assert up == [("infscale.config", "infscale.latency.sweeps")]


def test_parsing_the_snakefile_imports_no_report_code():
    graph = import_graph()
    rules = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    start = set(re.findall(r"^from (infscale[\w.]*) import", rules, re.M))
    assert "infscale.config" not in start and "infscale.checks" in start
    reached, todo = set(), list(start)
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph.get(module, ())
    assert {"infscale.outputs", "infscale.grid"} <= reached
    assert not [m for m in reached if m.startswith("infscale.report")]


# A dry run in a fresh interpreter, then the infscale modules it imported: what parsing the
# Snakefile (and planning the jobs) really loads, sitecustomize and lazy imports included.
DRY_RUN_MODULES = """
import sys
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    assert not done.code, done.code
print(*sorted(m for m in sys.modules if m.startswith("infscale")))
"""


def test_a_dry_run_loads_no_report_code(tmp_path):
    args = ["--snakefile", REPO / "Snakefile", "--directory", tmp_path, f"--configfile={MICRO}"]
    proc = subprocess.run(
        [sys.executable, "-c", DRY_RUN_MODULES, *map(str, args), "-n", "--quiet"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.splitlines()[-1].split()
    assert {"infscale.outputs", "infscale.checks", "infscale.grid"} <= set(loaded)
    assert [m for m in loaded if m.startswith("infscale.report")] == []
