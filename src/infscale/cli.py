"""The ``infscale`` command (DESIGN.md, "Command-line contract"; external checks rely on it).

Each handler imports what it needs (pandas, scipy, pulp, torch), so the command starts in well
under a second. A bad argument or input file prints one line, ``infscale: error: ...``, and
exits 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from infscale import __version__
from infscale.errors import InputError, one_line
from infscale.fit.compare import DEFAULT_LAWS as COMPARE_DEFAULT_LAWS
from infscale.fit.conditional import FORMS
from infscale.fit.core import FAMILIES, METHODS, TIES
from infscale.fit.law import LAWS as COMPARE_LAWS
from infscale.latency.protocol import BACKENDS, DEVICE_PATTERN, DTYPES, VLLM_PYTHON, Protocol
from infscale.select.objectives import OBJECTIVES
from infscale.shapes import PAPER_MULTIPLE_OF, Shape

T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        args.handler(args)
    except (InputError, OSError) as err:
        print(f"infscale: error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def _plan(args: argparse.Namespace) -> None:
    """The plan of ``--configfile`` against its cluster section; exit 2 when a job breaks a
    limit (one line per job), as a submission would fail then."""
    import csv

    from infscale.checks import load_config
    from infscale.plan import COLUMNS, plan_jobs, summary

    schema = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
    if not schema.exists():
        schema = args.configfile.resolve().parent / "schema.yaml"
    config = _reading(args.configfile, load_config, args.configfile, schema)
    profile = args.profile
    if profile is None and Path("profiles/slurm/config.yaml").exists():
        profile = Path("profiles/slurm")
    if profile is not None and not (profile / "config.yaml").exists():
        raise InputError(f"--profile {profile}: no config.yaml there")
    jobs = plan_jobs(config, profile)
    print("\n".join(summary(jobs, config)))
    if args.out is not None:
        with args.out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(job.row() for job in jobs)
    broken = [j for j in jobs if j.limit and not j.limit.startswith("continues")]
    for job in broken:
        print(f"infscale: limit: {job.rule} {job.job}: {job.limit}", file=sys.stderr)
    if broken:
        raise SystemExit(2)


def _params(args: argparse.Namespace) -> None:
    shape = _shape(args)
    print(shape.non_embedding_params if args.non_embedding else shape.n_params)


def _fit(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from infscale.fit.core import numerical_warnings, table_columns
    from infscale.fit.law import law_of
    from infscale.fit.laws import fit_points, read_points
    from infscale.fit.points import vocab_hint, with_shape_defaults
    from infscale.io import read_csv, write_json
    from infscale.provenance import command_provenance

    if args.form is not None and args.law != "conditional":
        raise InputError("--form applies only to --law conditional")
    law = law_of(args.law, args.form)
    points = read_csv(args.data, required=["N", "D", "loss"])
    if args.fit_set is not None:
        if args.fit_set not in points.columns:
            raise InputError(f"{args.data}: no column {args.fit_set} (--fit-set)")
        points = points[points[args.fit_set] == 1]
        if points.empty:
            raise InputError(f"{args.data}: no row has {args.fit_set} = 1 (--fit-set)")
    points = with_shape_defaults(points, args.vocab_size, args.multiple_of)
    try:
        read = _reading(args.data, read_points, law, points)
    except InputError as err:
        raise InputError(f"{err}{vocab_hint(points, args.vocab_size, err)}") from None
    (loss,) = _reading(args.data, table_columns, points, ["loss"], "the fit")
    data = replace(
        read,
        loss=loss,
        groups=points["size_group"].astype(str).to_numpy()
        if "size_group" in points.columns
        else None,
        runs=points["run"].astype(str).to_numpy() if "run" in points.columns else None,
    )
    caught: list[str] = []
    with numerical_warnings(caught):
        result = fit_points(
            law, data, method=args.method, tie=args.tie, bootstrap=args.bootstrap, seed=args.seed
        )
    result["warnings"] += caught
    result |= {
        "data": str(args.data),
        "fit_set": args.fit_set,
        "provenance": command_provenance(_settings(args)),
    }
    for warning in result["warnings"]:
        print(f"infscale: warning: {warning}", file=sys.stderr)
    write_json(args.out, result)
    form = f"{result['form']}, " if "form" in result else ""
    print(
        f"{args.law} law ({form}{args.method}, tie {args.tie}) on {result['n_points']} points: "
        + ", ".join(f"{k}={v:.6g}" for k, v in result["params"].items())
        + "; "
        + ", ".join(
            f"{k}={v:.6g}" if v is not None else f"{k}=n/a" for k, v in result["metrics"].items()
        )
    )


def _compare(args: argparse.Namespace) -> None:
    from infscale.fit.compare import compare_laws
    from infscale.io import read_csv, write_csv

    points = read_csv(args.data)
    names = [name.strip() for name in args.laws.split(",") if name.strip()]
    table = _reading(
        args.data,
        lambda: compare_laws(
            points,
            names,
            args.method,
            fit_set=args.fit_set,
            group_by=args.group_by,
            bootstrap=args.bootstrap,
            seed=args.seed,
            vocab_size=args.vocab_size,
            multiple_of=args.multiple_of,
            jobs=args.jobs,
        ),
    )
    write_csv(args.out, table)
    shown = ["law", "tie", "n_params", "n_fit", "fit_mse", "test_mse", "logo_rel_err", "aic"]
    print(table[shown].to_string(index=False))
    for row in table[table["error"].notna()].itertuples():
        print(f"infscale: warning: {row.law} tie {row.tie}: {row.error}", file=sys.stderr)


def _predict(args: argparse.Namespace) -> None:
    from infscale.fit.laws import predict_points, predict_points_interval
    from infscale.io import read_csv, write_csv

    fit = _read_fit(args.fit)
    points = read_csv(args.data)
    table = points.assign(loss_pred=_reading(args.data, predict_points, fit, points))
    band = _reading(args.data, predict_points_interval, fit, points)  # with bootstrap samples
    if band is not None:
        table = table.assign(loss_pred_lo=band[0], loss_pred_hi=band[1])
    write_csv(args.out, table)


def _select(args: argparse.Namespace) -> None:
    from infscale.fit.laws import predict_points
    from infscale.io import read_csv, write_csv
    from infscale.select.ilp import CANDIDATE_COLUMNS, select_top_k
    from infscale.select.objectives import THROUGHPUT

    if args.objective == "throughput" and args.max_loss is None:
        raise InputError("--objective throughput needs --max-loss (the predicted-loss target)")
    fit = _read_fit(args.fit)
    required = (*CANDIDATE_COLUMNS, THROUGHPUT) if args.objective == "throughput" else ()
    candidates = read_csv(args.candidates, required=required or CANDIDATE_COLUMNS)
    table = select_top_k(
        candidates,
        _reading(args.candidates, predict_points, fit, candidates),
        args.k,
        objective=args.objective,
        max_params=args.max_params,
        max_tokens=args.max_tokens,
        max_latency=args.max_latency,
        max_loss=args.max_loss,
    )
    write_csv(args.out, table)
    chosen = table[table["selected"] == 1].sort_values("rank")
    shown = ["rank", "name", "d_model", "n_layers", "N", "latency_s", *required[-1:], "loss_pred"]
    print(chosen[shown].to_string(index=False))


def _design(args: argparse.Namespace) -> None:
    """The runs to train next (DESIGN.md, ``infscale design``); the uncertainty before any of
    them on the first line, then the chosen runs."""
    from infscale.design.problem import OUTPUT_COLUMNS, RUN_COLUMNS
    from infscale.design.rounds import design_runs
    from infscale.io import read_csv, write_csv
    from infscale.select.ilp import CANDIDATE_COLUMNS

    fit = _read_fit(args.fit)
    proposals = read_csv(args.proposals, required=RUN_COLUMNS)
    candidates = read_csv(args.candidates, required=CANDIDATE_COLUMNS)
    budgets = {
        "max_params": args.max_params,
        "max_tokens": args.max_tokens,
        "max_latency": args.max_latency,
    }
    result = design_runs(fit, proposals, candidates, args.k, budgets, args.budget_flops, args.seed)
    design, problem, table = result.design, result.problem, result.table
    resamples = len(problem.run_loss)
    print(
        f"uncertainty before: {design.uncertainty_before:.4f} bits (entropy of the top-{args.k} "
        f"choice over {resamples} resamples; run noise sd {problem.noise_sd:.4g}, the fit's)"
    )
    if problem.skipped:
        print(
            f"infscale: warning: {problem.skipped} resample(s) predict a non-finite or "
            "non-positive loss and are left out",
            file=sys.stderr,
        )
    write_csv(args.out, table)
    if design.steps:
        print(table[["name", "N", "D", *OUTPUT_COLUMNS]].to_string(index=False))
    else:
        print("no run is expected to shrink the uncertainty: nothing to train")


def _latency(args: argparse.Namespace) -> None:
    shape = _shape(args)
    from infscale.io import write_json
    from infscale.latency.measure import measure_latency, set_threads, summary_line
    from infscale.provenance import command_provenance

    set_threads(args.threads)
    result = measure_latency(
        shape,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        batch_size=args.batch_size,
        trials=args.trials,
        warmup=args.warmup,
        dtype=args.dtype,
        do_sample=not args.greedy,
        temperature=args.temperature,
        top_p=args.top_p,
        device=args.device,
        seed=args.seed,
        backend=args.backend,
        max_position=args.max_position,
        max_cv=args.max_cv,
        max_repeats=args.max_repeats,
        python=args.python,
    )
    write_json(args.out, {**result, "provenance": command_provenance(_settings(args))})
    print(summary_line(result))


def _shape(args: argparse.Namespace) -> Shape:
    return Shape(
        d_model=args.d_model,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        vocab_size=args.vocab_size,
        multiple_of=args.multiple_of,
        n_kv_heads=args.n_kv_heads,
        ffn_hidden=args.ffn_hidden,
        head_dim=args.head_dim,
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What the command was asked, for the provenance of a result made by hand."""
    return {key: value for key, value in vars(args).items() if key != "handler"}


def _read_fit(path: Path) -> dict:
    from infscale.fit.laws import check_fit
    from infscale.io import read_json

    fit = read_json(path)
    if not isinstance(fit, dict) or fit.get("law") not in FAMILIES:
        raise InputError(f"{path}: not a fit result (no law {' or '.join(FAMILIES)})")
    _reading(path, check_fit, fit)
    return fit


def _reading(path: Path, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)``, an InputError about the table read from ``path`` naming the file."""
    try:
        return read(*args)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS has one: a SLURM job's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _shape_default_args(sub: argparse.ArgumentParser) -> None:
    """fit's and compare's stand-ins for the conditional law's missing columns."""
    sub.add_argument(
        "--vocab-size",
        type=_positive_int,
        help="vocabulary size where the data has no vocab_size column (the conditional law's)",
    )
    sub.add_argument(
        "--multiple-of",
        type=_positive_int,
        default=PAPER_MULTIPLE_OF,
        help="SwiGLU width rounding where the data has no ffn_hidden column "
        "(default: %(default)s, the paper's)",
    )


def _bootstrap_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--bootstrap",
        type=_count,
        default=0,
        metavar="K",
        help="95%% intervals of the parameters from K refits on resamples of the training runs "
        "(the column run; without it, of the points) (default: 0, none)",
    )
    sub.add_argument(
        "--seed", type=_count, default=0, help="bootstrap resampling seed (an integer >= 0)"
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _device(text: str) -> str:
    if not re.match(DEVICE_PATTERN, text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _probability(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as an InputError (one line, exit 2) from main."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


def _selection_arguments(sub: argparse.ArgumentParser) -> None:
    """The top-k selection's inputs, as `select` and `design` both take them."""
    sub.add_argument(
        "--candidates",
        type=Path,
        required=True,
        help="CSV with name, d_model, n_layers, N, D, latency_s",
    )
    sub.add_argument("--k", type=_positive_int, required=True)
    sub.add_argument("--max-params", type=_positive_float, help="N_C")
    sub.add_argument("--max-tokens", type=_positive_float, help="D_C")
    sub.add_argument("--max-latency", type=_positive_float, metavar="SECONDS", help="T_C")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="infscale",
        description="Inference-efficient scaling laws: count, fit, predict, select, design, time.",
    )
    parser.add_argument("--version", action="version", version=f"infscale {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    def shape_args(sub: argparse.ArgumentParser, heads_required: bool) -> None:
        sub.add_argument("--d-model", type=_positive_int, required=True)
        sub.add_argument("--n-layers", type=_positive_int, required=True)
        sub.add_argument("--vocab-size", type=_positive_int, required=True)
        sub.add_argument(
            "--n-heads",
            type=_positive_int,
            required=heads_required,
            default=None if heads_required else 1,
            help=None
            if heads_required
            else "checked to divide d_model; N depends on it only with --n-kv-heads or --head-dim",
        )
        sub.add_argument(
            "--multiple-of",
            type=_positive_int,
            default=PAPER_MULTIPLE_OF,
            help="SwiGLU width rounding (default: %(default)s, the paper's)",
        )
        sub.add_argument(
            "--n-kv-heads",
            type=_positive_int,
            metavar="K",
            help="key/value heads, a divisor of n_heads (default: n_heads, multi-head)",
        )
        sub.add_argument(
            "--ffn-hidden",
            type=_positive_int,
            metavar="F",
            help="SwiGLU hidden width (default: open_lm's 8d/3 rounded up to --multiple-of)",
        )
        sub.add_argument(
            "--head-dim",
            type=_positive_int,
            metavar="HD",
            help="attention head width, even (default: d_model / n_heads)",
        )

    sub = command("params", _params, "Print N, the exact parameter count of a shape.")
    shape_args(sub, heads_required=False)
    sub.add_argument(
        "--non-embedding",
        action="store_true",
        help="print N - 2·V·D, without the untied input and output embeddings",
    )

    sub = command("fit", _fit, "Fit a scaling law to training points; write FIT.json.")
    sub.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CSV with N, D, loss (+ d_model, n_layers for the inference law; d_model, "
        "vocab_size, ffn_hidden and where present n_heads, n_kv_heads, head_dim for the "
        "conditional law)",
    )
    sub.add_argument("--law", choices=FAMILIES, required=True)
    sub.add_argument(
        "--form",
        choices=FORMS,
        help="the conditional law's form (default: multiplicative, the follow-up's)",
    )
    sub.add_argument(
        "--method",
        choices=METHODS,
        default="lm",
        help="lm: the paper's curve_fit from ones; huber: Chinchilla's; vp: variable "
        "projection (not the conditional law's multiplicative form) (default: %(default)s)",
    )
    sub.add_argument(
        "--tie",
        choices=TIES,
        default="all",
        help="exponents tied to alpha (default: %(default)s, the paper's)",
    )
    sub.add_argument("--fit-set", metavar="COLUMN", help="fit only the rows whose COLUMN is 1")
    _shape_default_args(sub)
    _bootstrap_args(sub)
    sub.add_argument("--out", type=Path, required=True)

    sub = command(
        "compare",
        _compare,
        "Fit every law in every tie mode on the same points and score each; write TABLE.csv.",
    )
    sub.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CSV with N, D, loss and what the laws read (see fit --data); size_group groups",
    )
    sub.add_argument(
        "--laws",
        default=",".join(COMPARE_DEFAULT_LAWS),
        metavar="LAW,LAW",
        help=f"comma-separated, of {', '.join(COMPARE_LAWS)} (default: %(default)s)",
    )
    sub.add_argument(
        "--method",
        choices=METHODS,
        default="lm",
        help="lm: the paper's curve_fit; huber: Chinchilla's; vp: variable projection "
        "(default: %(default)s)",
    )
    sub.add_argument(
        "--fit-set",
        metavar="COLUMN",
        help="fit only the rows whose COLUMN is 1; the others are the test rows",
    )
    sub.add_argument(
        "--group-by",
        metavar="COLUMN",
        help="size-group column for Spearman and extrapolation (default: size_group if present)",
    )
    sub.add_argument(
        "--jobs",
        type=_positive_int,
        default=_usable_cpus(),
        help="processes that fit the laws side by side (default: the CPUs this process may use, "
        "%(default)s)",
    )
    _shape_default_args(sub)
    _bootstrap_args(sub)
    sub.add_argument("--out", type=Path, required=True)

    sub = command(
        "predict",
        _predict,
        "Predict the loss of points with a fit; write the points plus loss_pred.",
    )
    sub.add_argument("--fit", type=Path, required=True)
    sub.add_argument("--data", type=Path, required=True)
    sub.add_argument("--out", type=Path, required=True)

    sub = command(
        "select",
        _select,
        "Pick the k candidates of lowest predicted loss within the budgets (an integer program).",
    )
    sub.add_argument("--fit", type=Path, required=True)
    _selection_arguments(sub)
    sub.add_argument(
        "--max-loss", type=_positive_float, metavar="L", help="predicted-loss ceiling (Eq. 4)"
    )
    sub.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="loss",
        help="loss: lowest predicted loss (the paper's Eq. 3); throughput: highest throughput_tps "
        "with predicted loss <= --max-loss (the follow-up's Eq. 4)",
    )
    sub.add_argument("--out", type=Path, required=True)

    sub = command(
        "design",
        _design,
        "Pick the runs to train next that most settle the top-k selection per FLOP.",
    )
    sub.add_argument("--fit", type=Path, required=True, help="FIT.json with bootstrap resamples")
    sub.add_argument(
        "--proposals",
        type=Path,
        required=True,
        help="CSV of possible runs: name, d_model, n_layers, N, D, the shape columns the law "
        "reads, flops (default 6·N·D)",
    )
    _selection_arguments(sub)
    sub.add_argument(
        "--budget-flops", type=_positive_float, required=True, metavar="F", help="FLOPs to spend"
    )
    sub.add_argument(
        "--seed", type=_count, default=0, help="seed of the simulated outcomes (an integer >= 0)"
    )
    sub.add_argument("--out", type=Path, required=True)

    sub = command(
        "plan", _plan, "Print what a config asks of a cluster: jobs, GPUs, GPU-hours, limits."
    )
    sub.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    sub.add_argument(
        "--profile", type=Path, help="SLURM profile directory (default: profiles/slurm if here)"
    )
    sub.add_argument("--out", type=Path, help="PLAN.csv: one row per job")
    sub = command("latency", _latency, "Time generation for a randomly initialised shape.")
    shape_args(sub, heads_required=True)
    protocol = Protocol()  # the flags are the config's latency section: its one set of defaults
    sub.add_argument("--input-tokens", type=_positive_int, default=protocol.input_tokens)
    sub.add_argument("--output-tokens", type=_positive_int, default=protocol.output_tokens)
    sub.add_argument("--batch-size", type=_positive_int, default=protocol.batch_size)
    sub.add_argument("--trials", type=_positive_int, default=protocol.trials)
    sub.add_argument("--warmup", type=_count, default=protocol.warmup)
    sub.add_argument(
        "--dtype",
        choices=DTYPES,
        default=protocol.dtype,
        help="auto: bfloat16 on a GPU, float32 on the CPU",
    )
    sub.add_argument(
        "--device", type=_device, default=protocol.device, help="auto, cpu, cuda, cuda:1, ..."
    )
    sub.add_argument("--threads", type=_positive_int, help="torch CPU threads")
    sub.add_argument(
        "--backend",
        choices=BACKENDS,
        default=protocol.backend,
        help="hf: transformers generate (the paper); vllm: vLLM's engine (GPU or its CPU build)",
    )
    sub.add_argument(
        "--python",
        default=VLLM_PYTHON,
        help="the vLLM environment's Python, used for --backend vllm where this one has no vLLM "
        "(`make vllm-env`; default: %(default)s)",
    )
    sub.add_argument(
        "--max-position",
        type=_positive_int,
        default=protocol.max_position,
        help="position limit; input + output tokens must fit (default: %(default)s)",
    )
    sub.add_argument(
        "--max-cv",
        type=_positive_float,
        default=protocol.max_cv,
        help="re-time a measurement whose coefficient of variation exceeds this, then flag it",
    )
    sub.add_argument(
        "--max-repeats",
        type=_count,
        default=protocol.max_repeats,
        help="re-timings allowed by --max-cv, each adding --trials trials (default: %(default)s)",
    )
    sub.add_argument(
        "--greedy",
        action="store_true",
        default=not protocol.do_sample,
        help="greedy decoding, not sampling",
    )
    sub.add_argument("--temperature", type=_positive_float, default=protocol.temperature)
    sub.add_argument("--top-p", type=_probability, default=protocol.top_p)
    sub.add_argument("--seed", type=_count, default=protocol.seed, help="an integer >= 0")
    sub.add_argument("--out", type=Path, required=True)
    return parser


if __name__ == "__main__":
    sys.exit(main())
