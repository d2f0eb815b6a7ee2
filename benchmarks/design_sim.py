"""Does ``infscale design`` reach the grid's answer for less compute? Worlds of known truth.

Three families of worlds, each a cloud of law parameters (one member the truth, 200 others what
the researcher knows before training anything: the resamples ``infscale design`` reads):

- ``inference``: the inference law around the default run's fit (README,
  "What the default run finds"): gamma and epsilon drawn from their reported point and 95 %
  interval (a split log-normal through the three numbers), A, B, E, alpha = beta from a
  run-level bootstrap of Chinchilla's law fitted (huber) to the default grid's measured losses
  (docs/benchmarks.md, "Seed noise and shape scans") with that shape factor divided out.
  Default candidates, latency budget 0.6 x c1's.
- ``conditional``: the follow-up's multiplicative law, the same Chinchilla part, width and MLP
  factors with optima drawn around the follow-up's d/sqrt(N) = 0.08 and r = 1.03.
- ``published``: Chinchilla's law fitted (huber, alpha and beta free) to the Marin isoflop suite
  of tests/fit/published, its bootstrap the cloud; candidates of one compute budget, 10x the
  suite's largest, split between N and D, the deepest too slow for the latency budget.

Every run's observed loss is its true loss plus noise at the measured seed-to-seed sd (0.0051,
README). Designs are scored at equal FLOPs (fractions of the grid's): the config's grid (the
suite's runs for ``published``), a random design per world (proposals in random order, each
added while it fits), and ``infscale design``'s greedy order (a prefix within each budget). The
proposals: every size group's shapes across R, with MLP-width and GQA variants, at every
multiplier (the suite's shapes at every budget). After the runs, every design is read the same
way: the cloud reweighted by the likelihood of the observed losses (importance weights, the
cheap refit), the top-1 the feasible candidate of lowest posterior-mean loss. Scores: P(top-1 is
the true best feasible), regret in true loss, and the FLOPs at which the design first matches
the grid's accuracy; 95 % intervals by bootstrap over worlds.

    python benchmarks/design_sim.py                  # 200 worlds per family, a few minutes
    python benchmarks/design_sim.py --worlds 50      # a quick look
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from infscale.checks import load_config
from infscale.design.greedy import (
    OUTCOMES,
    greedy_design,
    likelihood_scale,
    log_likelihood,
    normalise,
)
from infscale.fit.frontier import training_compute
from infscale.fit.laws import fit_law, predict_points
from infscale.grid import candidate_runs, grid_runs
from infscale.select.ilp import select_top_k
from infscale.shapes import Shape

REPO = Path(__file__).resolve().parents[1]
SEED_SD = 0.0051  # README: the default grid's seed-to-seed sd of the loss
KNOWN = 200  # resamples per world (the default config's fit.bootstrap), reweighted after runs
FAMILIES = ("inference", "conditional", "published")
POOL = 600  # parameter draws per family: the truths and the known resamples come from these
FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
BOOT = 2000  # bootstrap resamples of the worlds for the intervals

# The default run's inference law (README): gamma, epsilon as (point, 95 % low, 95 % high).
GAMMA = (-0.68, -1.98, -0.019)
EPSILON = (0.14, 0.12, 12.0)
# The default grid's measured losses in the paper's metric (docs/benchmarks.md, seed noise):
# (d_model, n_layers, ffn_hidden or None, multiplier, loss).
DEFAULT_POINTS = [
    (40, 2, None, 4, 4.862), (40, 2, None, 8, 4.396), (40, 2, None, 16, 4.063),
    (48, 1, None, 4, 4.880), (48, 1, None, 8, 4.410), (48, 1, None, 16, 4.091),
    (48, 3, None, 4, 4.550), (56, 2, None, 4, 4.451), (72, 1, None, 4, 4.376),
    (80, 1, 112, 4, 4.409), (88, 1, 48, 4, 4.468), (72, 2, None, 4, 4.123),
    (96, 1, None, 4, 4.053), (104, 1, 176, 4, 4.091), (112, 1, 128, 4, 4.069),
    (120, 1, 64, 4, 4.094),
]  # fmt: skip
# The follow-up's optima (d / sqrt(N_nonemb), r) and the spread drawn around them (log sd).
X_OPT, R_OPT, OPT_SPREAD = 0.08, 1.03, 0.25
COEF_RANGE = (0.02, 0.2)  # a1 and b1, log-uniform: shape effects of about 1-10 % of the loss
# Proposals beyond the grid, per default size group: MLP-width and GQA variants at about the
# group's N, as (d_model, n_layers, ffn_hidden, n_kv_heads).
VARIANTS = {
    "xs": [(56, 1, 64, None), (32, 3, 160, None), (32, 4, None, 1)],
    "s": [(80, 1, 112, None), (88, 1, 48, None), (40, 5, None, 1)],
    "m": [(104, 1, 176, None), (112, 1, 128, None), (120, 1, 64, None), (56, 4, None, 1)],
}
MULTIPLIERS = (4, 8, 16)
# The published family: candidates at this multiple of the suite's largest budget, N at these
# multiples of the fit's compute-optimal N (near-ties: the isoflop curve is flat there), shapes
# along the suite's (R about 90, head width 128), the latency a cost per layer; the two
# largest are too slow.
PUBLISHED_SCALE = 10
PUBLISHED_N = (0.4, 0.6, 0.8, 1.0, 1.25, 1.6, 2.5)
PUBLISHED_R = 90
PUBLISHED_VOCAB = 128_256
PUBLISHED_TOO_SLOW = 2


class Family(NamedTuple):
    """A world family: candidates and which meet the budgets, proposals and their FLOPs, the
    grid (indices into the proposals), and every pool member's predicted losses."""

    name: str
    feasible: np.ndarray
    flops: np.ndarray
    grid: np.ndarray
    candidate_loss: np.ndarray  # pool x candidates
    run_loss: np.ndarray  # pool x proposals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=200, help="worlds per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes (default: 2 cores)")
    parser.add_argument(
        "--outcomes", type=int, default=OUTCOMES, help="outcomes the design simulates per run"
    )
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=FAMILIES)
    args = parser.parse_args()
    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    makers = {
        "inference": inference_family,
        "conditional": conditional_family,
        "published": lambda _, r: published_family(r),
    }
    families = [makers[name](config, rng) for name in args.families]
    print(f"families built in {time.perf_counter() - start:.0f} s")
    for fam in families:
        began = time.perf_counter()
        scores = simulate(fam, args.worlds, args.seed, args.workers, args.outcomes)
        print(f"\n## {fam.name}: {args.worlds} worlds ({time.perf_counter() - began:.0f} s)")
        print(f"proposals {len(fam.flops)}, grid runs {len(fam.grid)}, "
              f"grid FLOPs {fam.flops[fam.grid].sum():.3g}")  # fmt: skip
        print(table(scores).to_string(index=False))
        print(reach_line(scores))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


# ---------------------------------------------------------------- the families


def default_tables(config: dict) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The default config's candidates (latency: a cost per layer through c1's 0.386 s and
    c6's 0.144 s, README), the proposals (the grid's shapes plus VARIANTS at every multiplier),
    and which proposals the config's grid trains."""
    cands = [run.shape for run in candidate_runs(config)]
    tokens = config["select"]["tokens"]
    candidates = shape_table([r.variant for r in candidate_runs(config)], cands, tokens)
    per_layer = (0.386 - 0.144) / (10 - 2)
    candidates["latency_s"] = 0.144 + per_layer * (candidates["n_layers"] - 2)
    vocab, multiple_of = config["model"]["vocab_size"], config["model"]["multiple_of"]
    rows, grid = [], []
    for run in grid_runs(config):
        extra = [Shape(d, n, 4, vocab, multiple_of, k, f) for d, n, f, k in VARIANTS[run.size]]
        for shape in [run.shape] + (extra if run.variant == "v1" else []):
            for m in MULTIPLIERS:
                grid.append(shape == run.shape and m in run.multipliers)
                rows.append(shape_table([f"{shape.label}-{m}x"], [shape], m * shape.n_params))
    return candidates, pd.concat(rows, ignore_index=True), np.flatnonzero(grid)


def shape_table(names: list[str], shapes: list[Shape], D: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": names,
            "d_model": [s.d_model for s in shapes],
            "n_layers": [s.n_layers for s in shapes],
            "n_heads": [s.n_heads for s in shapes],
            "n_kv_heads": [s.n_kv_heads for s in shapes],
            "ffn_hidden": [s.ffn_hidden for s in shapes],
            "vocab_size": [s.vocab_size for s in shapes],
            "N": [s.n_params for s in shapes],
            "D": [float(D)] * len(shapes),
        }
    )


def default_chinchilla(config: dict, rng: np.random.Generator) -> list[dict[str, float]]:
    """POOL run-level bootstrap resamples of Chinchilla's law (huber, alpha = beta) fitted to
    the default grid's losses with the default run's shape factor divided out."""
    vocab, multiple_of = config["model"]["vocab_size"], config["model"]["multiple_of"]
    shapes = [Shape(d, n, 4, vocab, multiple_of, None, f) for d, n, f, _, _ in DEFAULT_POINTS]
    N = np.array([s.n_params for s in shapes], float)
    D = N * [m for *_, m, _ in DEFAULT_POINTS]
    R = np.array([s.aspect_ratio for s in shapes])
    loss = np.array([p[-1] for p in DEFAULT_POINTS]) / (1 + EPSILON[0] * R ** GAMMA[0])
    runs = [s.label for s in shapes]
    fit = fit_law("chinchilla", N, D, loss, method="huber", tie="all", runs=runs,
                  bootstrap=POOL, seed=int(rng.integers(2**31)))  # fmt: skip
    samples = fit["bootstrap"]["samples"]
    return [{p: v[i] for p, v in samples.items()} for i in range(len(samples["A"]))]


def split_lognormal(point: float, lo: float, hi: float, n: int, rng: np.random.Generator):
    """|value| log-normal through a point and a 95 % interval that is not symmetric about it."""
    z = rng.standard_normal(n)
    sign = np.sign(point)
    up, down = np.log(hi / point) / 1.96, np.log(point / lo) / 1.96
    return sign * abs(point) * np.exp(np.where(z > 0, z * up, z * down))


def inference_family(config: dict, rng: np.random.Generator) -> Family:
    candidates, proposals, grid = default_tables(config)
    base = default_chinchilla(config, rng)
    gamma = split_lognormal(*GAMMA, len(base), rng)
    epsilon = split_lognormal(*EPSILON, len(base), rng)
    draws = [b | {"gamma": g, "epsilon": e} for b, g, e in zip(base, gamma, epsilon, strict=True)]
    fit = {"law": "inference"}
    return build("inference", fit, draws, candidates, proposals, grid, default_budgets(config))


def conditional_family(config: dict, rng: np.random.Generator) -> Family:
    candidates, proposals, grid = default_tables(config)
    base = default_chinchilla(config, rng)
    n = len(base)
    a1, b1 = (np.exp(rng.uniform(*np.log(COEF_RANGE), n)) for _ in range(2))
    x_opt = X_OPT * np.exp(rng.normal(0, OPT_SPREAD, n))
    r_opt = R_OPT * np.exp(rng.normal(0, OPT_SPREAD, n))
    draws = [
        b | {"a1": a, "a2": a * x, "b1": c, "b2": c * r}
        for b, a, x, c, r in zip(base, a1, x_opt, b1, r_opt, strict=True)
    ]
    fit = {"law": "conditional", "form": "multiplicative"}
    return build("conditional", fit, draws, candidates, proposals, grid, default_budgets(config))


def default_budgets(config: dict) -> dict[str, float]:
    select = config["select"]
    return {
        "max_params": select["max_params"],
        "max_tokens": select["max_tokens"],
        "max_latency": select["max_latency_vs_baseline"] * 0.386,  # c1's latency, README
    }


def published_family(rng: np.random.Generator) -> Family:
    suite = pd.read_csv(REPO / "tests" / "fit" / "published" / "marin_isoflop_dclm.csv")
    fit = fit_law("chinchilla", suite["N"], suite["D"], suite["loss"], method="huber",
                  tie="none", bootstrap=POOL, seed=int(rng.integers(2**31)))  # fmt: skip
    samples = fit["bootstrap"]["samples"]
    draws = [{p: v[i] for p, v in samples.items()} for i in range(len(samples["A"]))]
    budgets = sorted(suite["budget_flops"].unique())
    suite_shapes = suite.groupby("shape")[["d_model", "n_layers", "N"]].first()
    rows = [suite.assign(name=suite["run"])[["name", "d_model", "n_layers", "N", "D"]]]
    for label, shape in suite_shapes.iterrows():
        for budget in budgets:
            if not ((suite["shape"] == label) & (suite["budget_flops"] == budget)).any():
                D = budget / (6 * shape["N"])
                rows.append(pd.DataFrame([{"name": f"{label}-{budget:g}", **shape, "D": D}]))
    proposals = pd.concat(rows, ignore_index=True)
    compute = PUBLISHED_SCALE * max(budgets)
    sweep = np.geomspace(1e8, 1e11, 3000)
    isoflop = predict_points(fit, pd.DataFrame({"N": sweep, "D": compute / (6 * sweep)}))
    shapes = [published_shape(m * sweep[np.argmin(isoflop)]) for m in PUBLISHED_N]
    N = np.array([s.n_params for s in shapes], float)
    candidates = pd.DataFrame(
        {
            "name": [s.label for s in shapes],
            "d_model": [s.d_model for s in shapes],
            "n_layers": [s.n_layers for s in shapes],
            "N": N,
            "D": compute / (6 * N),
            "latency_s": [0.01 * s.n_layers for s in shapes],
        }
    )
    slowest = sorted(candidates["latency_s"])[-PUBLISHED_TOO_SLOW - 1]
    limits = {"max_latency": float(slowest)}
    return build("published", {"law": "chinchilla"}, draws, candidates, proposals,
                 np.arange(len(suite)), limits)  # fmt: skip


def published_shape(target: float) -> Shape:
    """The shape of R about PUBLISHED_R whose N is nearest ``target``."""
    shapes = [
        Shape(d, max(1, round(d / PUBLISHED_R)), d // 128, PUBLISHED_VOCAB)
        for d in range(512, 16384, 128)
    ]
    return min(shapes, key=lambda s: abs(np.log(s.n_params / target)))


def build(
    name: str,
    fit: dict,
    draws: list[dict[str, float]],
    candidates: pd.DataFrame,
    proposals: pd.DataFrame,
    grid: np.ndarray,
    budgets: dict[str, float],
) -> Family:
    """Every draw's predictions; draws that predict a non-finite or non-positive loss are left
    out (as infscale design leaves such resamples out)."""
    cand, runs = [], []
    for params in draws:
        member = fit | {"params": params}
        with np.errstate(all="ignore"):
            c, r = predict_points(member, candidates), predict_points(member, proposals)
        if np.all(np.isfinite(c) & (c > 0)) and np.all(np.isfinite(r) & (r > 0)):
            cand.append(c)
            runs.append(r)
    point = select_top_k(candidates, np.mean(cand, axis=0), 1, **budgets)
    feasible = point["feasible"].to_numpy(bool)
    flops = training_compute(proposals["N"], proposals["D"])
    return Family(name, feasible, flops, grid, np.array(cand), np.array(runs))


# ---------------------------------------------------------------- the simulation


class Score(NamedTuple):
    design: str
    fraction: float
    correct: np.ndarray  # per world
    regret: np.ndarray


def simulate(fam: Family, worlds: int, seed: int, workers: int, outcomes: int) -> list[Score]:
    """Each design's top-1 correctness and regret per world, at each fraction of the grid's
    FLOPs (the grid at 1 only); the worlds shared among ``workers`` processes."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        per_world = pool.starmap(one_world, [(fam, seed, w, outcomes) for w in range(worlds)])
    found: dict[tuple[str, float], list[tuple[bool, float]]] = {}
    for world in per_world:
        for key, value in world.items():
            found.setdefault(key, []).append(value)
    return [
        Score(label, fraction, np.array([c for c, _ in v]), np.array([r for _, r in v]))
        for (label, fraction), v in found.items()
    ]


def one_world(
    fam: Family, seed: int, w: int, outcomes: int
) -> dict[tuple[str, float], tuple[bool, float]]:
    """World ``w``: a truth, the resamples known, the observed losses; each design's top-1
    correctness and regret, by (design, fraction of the grid's FLOPs)."""
    grid_flops = fam.flops[fam.grid].sum()
    rng = np.random.default_rng([seed, w])
    truth = int(rng.integers(len(fam.candidate_loss)))
    known = rng.choice(np.delete(np.arange(len(fam.candidate_loss)), truth), KNOWN, replace=False)
    observed = fam.run_loss[truth] + SEED_SD * rng.standard_normal(len(fam.flops))
    true_loss = np.where(fam.feasible, fam.candidate_loss[truth], np.inf)

    def score(runs: np.ndarray) -> tuple[bool, float]:
        chosen = top1(fam, known, runs, observed)
        return bool(chosen == np.argmin(true_loss)), float(true_loss[chosen] - true_loss.min())

    design = greedy_design(
        fam.candidate_loss[known], fam.feasible, 1, fam.run_loss[known], fam.flops, grid_flops,
        SEED_SD, w, outcomes,
    )  # fmt: skip
    order = np.array([s.run for s in design.steps], int)
    shuffled = rng.permutation(len(fam.flops))
    found = {("none", 0.0): score(np.array([], int))}
    for fraction in FRACTIONS:
        budget = fraction * grid_flops
        found["design", fraction] = score(order[np.cumsum(fam.flops[order]) <= budget])
        found["random", fraction] = score(fill(shuffled, fam.flops, budget))
    found["grid", 1.0] = score(fam.grid)
    return found


def fill(order: np.ndarray, flops: np.ndarray, budget: float) -> np.ndarray:
    """The runs of ``order`` taken in turn, each while it still fits the budget."""
    taken, spent = [], 0.0
    for j in order:
        if spent + flops[j] <= budget:
            taken.append(j)
            spent += flops[j]
    return np.array(taken, int)


def top1(fam: Family, known: np.ndarray, runs: np.ndarray, observed: np.ndarray) -> int:
    """The feasible candidate of lowest loss under the known resamples reweighted by the
    likelihood of the observed losses of ``runs``."""
    predicted = fam.run_loss[np.ix_(known, runs)]
    scale = likelihood_scale(fam.run_loss[known][:, runs], SEED_SD)
    log_w = np.zeros(len(known))
    for i, j in enumerate(runs):
        log_w += log_likelihood(observed[j], predicted[:, i], scale[i])[0]
    mean = normalise(log_w) @ fam.candidate_loss[known]
    return int(np.argmin(np.where(fam.feasible, mean, np.inf)))


# ---------------------------------------------------------------- the table


def interval(values: np.ndarray, stat: Callable = np.mean, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(values), size=(BOOT, len(values)))
    return tuple(np.percentile([stat(values[i]) for i in idx], [2.5, 97.5]))


def table(scores: list[Score]) -> pd.DataFrame:
    """Per design and budget: P(top-1 correct) and the mean regret, and the design's accuracy
    less the grid's (at its full FLOPs) and less a random design's (at the same FLOPs), paired
    by world (the same truth and outcomes), each with its 95 % interval."""
    grid = next(s for s in scores if s.design == "grid")
    random = {s.fraction: s for s in scores if s.design == "random"}
    rows = []
    for s in sorted(scores, key=lambda s: (s.design, s.fraction)):
        row = {
            "design": s.design,
            "flops_vs_grid": s.fraction,
            "p_top1": estimate(s.correct.astype(float), ".3f"),
            "regret": estimate(s.regret, ".2e"),
            "minus_grid": "",
            "minus_random": "",
        }
        if s.design == "design":
            row["minus_grid"] = estimate(s.correct - grid.correct.astype(float), "+.3f")
            row["minus_random"] = estimate(
                s.correct - random[s.fraction].correct.astype(float), "+.3f"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def estimate(values: np.ndarray, spec: str) -> str:
    lo, hi = interval(values)
    return f"{values.mean():{spec}} [{lo:{spec}}, {hi:{spec}}]"


def reach_line(scores: list[Score]) -> str:
    """The smallest fraction of the grid's FLOPs at which the design's accuracy reaches the
    grid's, with a bootstrap interval over worlds."""
    grid = next(s for s in scores if s.design == "grid").correct
    ours = sorted((s for s in scores if s.design == "design"), key=lambda s: s.fraction)
    table_ = np.array([s.correct for s in ours], float)
    fractions = np.array([s.fraction for s in ours])

    def reach(idx: np.ndarray) -> float:
        ok = table_[:, idx].mean(axis=1) >= grid[idx].mean()
        return float(fractions[np.argmax(ok)]) if ok.any() else np.inf

    point = reach(np.arange(len(grid)))
    rng = np.random.default_rng(0)
    boot = [reach(rng.integers(len(grid), size=len(grid))) for _ in range(BOOT)]
    lo, hi = np.percentile(boot, [2.5, 97.5], method="inverted_cdf")  # inf: never reached
    return (
        f"design reaches the grid's top-1 accuracy at {point:g} of its FLOPs "
        f"[95 %: {lo:g}, {hi:g}] (inf: not within the grid's FLOPs)"
    )


if __name__ == "__main__":
    main()
