"""Compare two workflow ``results/`` trees file by file, leaving out only what measured
wall-clock time or the circumstances of a run (when, where, which commit, which process) decide.

Every CSV, JSON and JSONL file is parsed and compared value by value; the model weights
(``*.safetensors``) and token windows (``*.bin``) byte by byte. Other files (figures, markdown,
HTML, task YAMLs and data) render or restate what those hold and are not compared. ``IGNORED``
lists, with the reason for each, the files and the fields (JSON keys at any depth, CSV
columns, JSONL record keys) that are left out; nothing else is.

Numbers compare with a relative tolerance of ``RTOL`` (1e-9, symmetric, no absolute floor);
integers, strings and booleans exactly. A result that truly changed (another window order, a
resumed run off by one step, a changed default) moves losses and fitted parameters by 1e-6 or
more; 1e-9 leaves room only for the last digits of a sum whose order a multi-threaded BLAS may
change. The comparison counts the numbers that are equal only within the tolerance.

Run as a script: ``python tests/results_diff.py A B`` (each a workflow directory or its
``results/``) prints each difference on one line and exits 1 if there is any, 0 if none.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infscale.train.steplog import EVENT

RTOL = 1e-9
PARSED = (".csv", ".json", ".jsonl")
BYTES = (".safetensors", ".bin")


@dataclass(frozen=True)
class Ignored:
    """Files matching ``pattern`` (fnmatch on the path under results/; ``*`` crosses ``/``):
    the whole file when ``fields`` is None, else those JSON keys (at any depth), CSV columns or
    JSONL record keys."""

    pattern: str
    fields: frozenset[str] | None
    reason: str


# What a latency measurement measured, and what follows from those times alone.
MEASURED = frozenset(
    {
        "median_s",
        "mean_s",
        "min_s",
        "iqr_s",
        "cv",
        "relative_cv",
        "relative_median",
        "trials_s",
        "trials",  # their number: more where a shape was timed again
        "per_token_ms",
        "tokens_per_s",
        "ttft_s",
        "ttft_trials_s",
        "reference",  # the shape of median time in the same rounds
        "repeats",  # a shape is timed again while its cv is above max_cv
        "flagged",  # its cv is still above max_cv
        # the per-token figures under vLLM's bench names (infscale.latency.serving)
        "avg_latency",
        "latencies",
        "percentiles",
        *(
            f"{stat}_{metric}_ms"
            for stat in ("mean", "median", "std", "p50", "p90", "p99")
            for metric in ("ttft", "tpot", "e2el")
        ),
    }
)

IGNORED: tuple[Ignored, ...] = (
    Ignored("logs/*", None, "logs: wall times, progress, process messages"),
    Ignored("benchmarks/*", None, "Snakemake's benchmark TSVs: each job's wall time and memory"),
    Ignored(
        "eval/*.hf-cache/*",
        None,
        "the datasets library's cache, keyed by the task files' fingerprints (mtimes included)",
    ),
    Ignored("*", frozenset({"provenance"}), "provenance: commit, host, device, versions, hash"),
    Ignored("runs/*/log.jsonl", frozenset({"tokens_per_s"}), "the training log's throughput"),
    Ignored("eval/*.json", frozenset({"seconds"}), "the evaluation's wall time"),
    Ignored("latency/d*-l*-h*.json", MEASURED, "a shape's measured generation times"),
    Ignored("latency/sweeps*.csv", MEASURED, "the sweeps' measured times (Fig. 3)"),
    Ignored("latency/throughput.csv", MEASURED, "measured tokens per second (Fig. 4)"),
    Ignored(
        "latency/candidate_throughput*.csv",
        MEASURED | {"batch_size", "saturated"},
        "the candidates' tokens per second, and the batch where it stopped rising",
    ),
    Ignored(
        "latency/crosscheck.*",
        frozenset({"tokens_per_s", "s_per_token", "measured_over_memory_model", "departs_from"})
        | {"flagged", "spearman_flops", "spearman_memory", "batch_size", "saturated"}
        | {"bytes_per_token", "bytes_rel"},
        "the candidates' measured throughput against the analytic models (the memory model at "
        "the measured batch), and what it flags",
    ),
    Ignored(
        "report/tables/throughput_crosscheck.csv",
        frozenset({"tokens_per_s", "s_per_token", "measured_over_memory_model", "departs_from"})
        | {"flagged", "batch_size", "bytes_per_token", "bytes_rel"},
        "latency/crosscheck.csv's measured throughput and flags",
    ),
    Ignored(
        "latency/sweep_fits.json",
        frozenset(
            {
                "intercept",
                "slope",
                "r2",
                "spearman_R_vs_latency",
                "fastest",
                "widest_shallowest_fastest",
                "ranking_fastest_first",
                "flagged",
            }
        ),
        "lines fitted to the sweeps' times and the shapes ranked by them",
    ),
    Ignored(
        "latency/model.json",
        frozenset(
            {
                "coefficients",
                "fit_median_rel_err",
                "loo_median_rel_err",
                "loo_max_rel_err",
                "median_s",
                "predicted_s",
                "rel_err",
                "fitted_s",
                "fitted_rel_err",
            }
        ),
        "the latency model fitted to the measured times, and its errors",
    ),
    Ignored(
        "latency/trained.csv",
        frozenset(
            {"checkpoint_median_s", "random_median_s", "ratio", "paired_ratio", "relative_cv"}
            | {"band", "agree", "flagged"}
        ),
        "trained candidates timed beside random-init twins, and the verdict on the times",
    ),
    # micro sets no latency budget: which candidates are feasible and chosen does not depend on
    # their latency, and is compared; its select.timing_z ties every throughput, so the
    # throughput objective's choice, ranks and tiers follow the predicted losses and are compared
    # The Pareto fronts (accuracy against measured latency, loss against measured throughput)
    # are drawn on the raw times, not on bands: which model is on them depends on the timing.
    Ignored(
        "select/*.csv",
        frozenset({"latency_s", "latency_log_se", "throughput_tps", "throughput_log_se", "pareto"}),
        "measured latency and throughput, their noise, and the fronts drawn on them",
    ),
    Ignored(
        "select/winner.json",
        frozenset({"latency_s", "baseline_latency_s", "speedup"}),
        "measured latencies and their ratio",
    ),
    Ignored("report/tables/selection.csv", frozenset({"latency_s"}), "measured latency"),
    Ignored("report/tables/runs.csv", frozenset({"latency_s"}), "measured latency"),
    # the winner, its contenders and how it was decided are compared: micro's select.timing_z
    # ties every latency, so accuracy alone decides (tests/configs/micro.yaml)
    Ignored(
        "report/tables/winner.csv",
        frozenset({"latency_s", "baseline_latency_s", "speedup"}),
        "measured latencies and their ratio",
    ),
    Ignored(
        "report/tables/trained_latency.csv",
        frozenset({"checkpoint_median_s", "random_median_s", "paired_ratio", "band", "agree"}),
        "latency/trained.csv's times and verdicts",
    ),
    Ignored(
        "report/tables/latency_model.csv", frozenset({"coefficient_s"}), "latency/model.json's"
    ),
    Ignored(
        "report/tables/latency_sweeps.csv",
        frozenset({"slope_s", "intercept_s", "r2", "spearman_latency_vs_R", "fastest"})
        | {"widest_shallowest_fastest"},
        "latency/sweep_fits.json's",
    ),
    Ignored(
        "report/tables/objectives.csv",
        frozenset({"latency_s", "throughput_tps"}),
        "select/objectives.csv's measured latency and throughput",
    ),
    Ignored(
        "latency/gqa_speedups.csv",
        frozenset({"tokens_per_s", "speedup_vs_mha"}),
        "the GQA sweep's measured tokens per second and their ratio",
    ),
    Ignored(
        "report/tables/gqa_throughput.csv",
        frozenset({"tokens_per_s", "speedup_vs_mha"}),
        "the GQA sweep's measured tokens per second and their ratio",
    ),
    Ignored("report/tables/provenance.csv", None, "commit, device, versions, summed wall/CPU time"),
    # its other lines restate chosen.json, selected.csv and budgets.json, which are compared
    Ignored("report/tables/story.csv", None, "the winner's line quotes the measured speed-up"),
)

# A JSONL record with steplog.EVENT marks a process event (start, resume: which step, how many
# processes), not a training step; a resumed run's log has one more. Step records are compared.


@dataclass
class Comparison:
    """The differences between two trees and what was compared."""

    differences: list[str] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)  # files, under results/
    ignored: list[str] = field(default_factory=list)  # whole files left out (IGNORED)
    other: list[str] = field(default_factory=list)  # files of a kind not compared
    inexact: int = 0  # numbers equal within RTOL but not bit for bit


def results_dir(path: str | Path) -> Path:
    """``path``'s results/ folder, or ``path`` itself if it has none."""
    path = Path(path)
    return path / "results" if (path / "results").is_dir() else path


def ignored_fields(relpath: str) -> frozenset[str] | None:
    """The fields of ``relpath`` left out; None if the whole file is."""
    left_out: set[str] = set()
    for rule in IGNORED:
        if fnmatch.fnmatchcase(relpath, rule.pattern):
            if rule.fields is None:
                return None
            left_out |= rule.fields
    return frozenset(left_out)


def compare_trees(a: str | Path, b: str | Path, *, part: bool = False) -> Comparison:
    """Compare every result file of tree ``a`` with ``b``'s (see :func:`results_dir`).
    ``part``: ``b`` ran only part of the workflow (to some targets): compare the files ``b``
    has, each of which ``a`` must have too."""
    a, b = results_dir(a), results_dir(b)
    result = Comparison()
    files_a, files_b = _result_files(a), _result_files(b)
    for rel in sorted(files_b if part else files_a | files_b):
        fields = ignored_fields(rel)
        if fields is None:
            result.ignored.append(rel)
        elif Path(rel).suffix not in PARSED + BYTES:
            result.other.append(rel)
        elif rel not in files_b:
            result.differences.append(f"{rel}: only in {a}")
        elif rel not in files_a:
            result.differences.append(f"{rel}: only in {b}")
        else:
            result.compared.append(rel)
            _compare_file(a / rel, b / rel, fields, rel, result)
    return result


def _result_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _compare_file(a: Path, b: Path, fields: frozenset[str], rel: str, out: Comparison) -> None:
    if a.suffix in BYTES:
        if a.read_bytes() != b.read_bytes():
            out.differences.append(f"{rel}: contents differ")
    elif a.suffix == ".csv":
        _compare_csv(pd.read_csv(a), pd.read_csv(b), fields, rel, out)
    elif a.suffix == ".json":
        _compare_values(_load_json(a, fields), _load_json(b, fields), rel, out)
    else:
        _compare_values(_load_jsonl(a, fields), _load_jsonl(b, fields), f"{rel}: step records", out)


def _load_json(path: Path, fields: frozenset[str]) -> Any:
    return _strip(json.loads(path.read_text()), fields)


def _load_jsonl(path: Path, fields: frozenset[str]) -> list[Any]:
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [_strip(r, fields) for r in records if not (isinstance(r, dict) and EVENT in r)]


def _strip(value: Any, fields: frozenset[str]) -> Any:
    """``value`` without the keys in ``fields``, at any depth."""
    if isinstance(value, dict):
        return {k: _strip(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [_strip(v, fields) for v in value]
    return value


def _compare_values(a: Any, b: Any, where: str, out: Comparison) -> None:
    """Record each difference between two parsed JSON values as ``where: what``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in b or key not in a:
                out.differences.append(f"{where}.{key}: only in {'A' if key in a else 'B'}")
            else:
                _compare_values(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.differences.append(f"{where}: {len(a)} items != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare_values(x, y, f"{where}[{i}]", out)
    elif _is_float_pair(a, b):
        same, exact = _close(np.array([a], float), np.array([b], float))
        out.inexact += int(same[0] and not exact[0])
        if not same[0]:
            out.differences.append(f"{where}: {a!r} != {b!r}")
    elif type(a) is not type(b) or a != b:
        out.differences.append(f"{where}: {a!r} != {b!r}")


def _is_float_pair(a: Any, b: Any) -> bool:
    """Two numbers of which one at least is a float (integers compare exactly)."""

    def number(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool)

    return number(a) and number(b) and (isinstance(a, float) or isinstance(b, float))


def _close(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(equal within RTOL of the larger magnitude, equal exactly); NaN equals NaN."""
    both_nan = np.isnan(a) & np.isnan(b)
    exact = both_nan | (a == b)
    with np.errstate(invalid="ignore"):
        near = np.abs(a - b) <= RTOL * np.maximum(np.abs(a), np.abs(b))
    return exact | near, exact


def _compare_csv(
    a: pd.DataFrame, b: pd.DataFrame, fields: frozenset[str], rel: str, out: Comparison
) -> None:
    a, b = (f.drop(columns=[c for c in f.columns if c in fields]) for f in (a, b))
    if list(a.columns) != list(b.columns):
        out.differences.append(f"{rel}: columns {list(a.columns)} != {list(b.columns)}")
        return
    if len(a) != len(b):
        out.differences.append(f"{rel}: {len(a)} rows != {len(b)}")
        return
    for column in a.columns:
        x, y = a[column], b[column]
        numeric = pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y)
        if numeric and pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            same, exact = _close(x.to_numpy(float), y.to_numpy(float))
            out.inexact += int((same & ~exact).sum())
        else:
            missing = x.isna().to_numpy() & y.isna().to_numpy()
            same = missing | (x.astype(str).to_numpy() == y.astype(str).to_numpy())
        values_a, values_b = x.tolist(), y.tolist()  # Python numbers, for the message
        for row in np.flatnonzero(~same):
            out.differences.append(
                f"{rel}: row {row} ({_row_label(a, row)}) column {column}: "
                f"{values_a[row]!r} != {values_b[row]!r}"
            )


def _row_label(frame: pd.DataFrame, row: int) -> str:
    """``first column=value``: a name, run or shape in most of the workflow's tables."""
    return f"{frame.columns[0]}={frame.iloc[row, 0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="a workflow directory or its results/")
    parser.add_argument("b", type=Path, help="the other")
    args = parser.parse_args(argv)
    for path in (args.a, args.b):
        if not results_dir(path).is_dir():
            parser.error(f"{path}: no such directory")
    result = compare_trees(args.a, args.b)
    for line in result.differences:
        print(line)
    print(
        f"{len(result.compared)} files compared, {len(result.ignored)} left out, "
        f"{len(result.other)} of other kinds not compared, "
        f"{result.inexact} numbers equal only within rtol {RTOL:g}, "
        f"{len(result.differences)} differences",
        file=sys.stderr,
    )
    return 1 if result.differences else 0


if __name__ == "__main__":
    sys.exit(main())
