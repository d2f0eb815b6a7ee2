"""Chinchilla's huber fit: a plain scipy loop against the vectorised fit, same starts, same data.

The reference is what a straightforward replication does: for each of the 4,500 grid starts,
scipy L-BFGS-B with default tolerances and numerical (2-point) gradients of the same Huber
objective, keeping the best. The vectorised fit is ``infscale.fit.methods.fit_huber`` (all starts at
once with analytic gradients, then a polish). Data: 250 synthetic points from the Chinchilla law
at the paper's scale with 1% noise (fixed seed); the fit is Chinchilla with alpha and beta free
(tie none), i.e. the full 6·6·5·5·5 = 4,500-start grid. Prints both times, their ratio and both
optima (objective and parameters). ``--starts K`` times the reference on every (4500/K)-th start
only and extrapolates linearly to 4,500 (printed as such); the default runs them all.

scipy's L-BFGS-B makes small BLAS calls every iteration. With OpenBLAS's default threads on a
busy machine they can make the reference several times slower (the vectorised fit hardly calls
BLAS), so the header prints OPENBLAS_NUM_THREADS; set it to 1 for a ratio free of that effect.

    [OPENBLAS_NUM_THREADS=1] python benchmarks/fit_speed.py [--points 250] [--starts 4500]
        [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.optimize import minimize

from infscale.fit import huber
from infscale.fit.laws import law_loss
from infscale.fit.methods import fit_huber, refits
from infscale.fit.paper import PaperProblem
from infscale.fit.points import Points

TRUTH = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34, "beta": 0.28}
LAW, TIE = "chinchilla", "none"


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(8e7), np.log(3.4e8), n))
    D = N * rng.choice([20, 40, 160], n)
    loss = law_loss(LAW, TRUTH, N, D) * (1 + 0.01 * rng.standard_normal(n))
    return N, D, loss


def reference(starts, where, logs):
    """One scipy L-BFGS-B run per start, numerical gradients; the best run."""

    def fun(u):
        with np.errstate(all="ignore"):
            return float(huber.objective(u, LAW, where, logs)[0])

    best = None
    for u0 in starts:
        run = minimize(fun, u0, method="L-BFGS-B")
        if np.isfinite(run.fun) and (best is None or run.fun < best.fun):
            best = run
    return best.x, best.fun


def show(name, u, value, free):
    params = {p: (np.exp(v) if p in huber.LOG_PARAMS else v) for p, v in zip(free, u, strict=True)}
    print(
        f"{name} optimum: objective {value:.10g}; "
        + ", ".join(f"{p}={v:.6g}" for p, v in params.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=250)
    parser.add_argument("--starts", type=int, default=4500, help="reference starts to time")
    parser.add_argument("--bootstrap", type=int, default=1000, help="K to time (0: skip)")
    args = parser.parse_args()
    N, D, loss = data(args.points)
    problem = PaperProblem(LAW, LAW, TIE, Points(N, D, loss))
    free, where, logs = problem.free, problem.where, problem.logs
    starts = problem.huber_starts()
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(
        f"{args.points} points, {len(starts)} starts, law {LAW}, tie {TIE}, "
        f"OPENBLAS_NUM_THREADS={blas}"
    )

    t0 = time.perf_counter()
    params = fit_huber(problem)
    fast = time.perf_counter() - t0
    u_fast = problem.to_u(params)
    f_fast = float(huber.objective(u_fast, LAW, where, logs)[0])

    every = max(1, len(starts) // args.starts)
    subset = starts[::every]
    t0 = time.perf_counter()
    u_ref, f_ref = reference(subset, where, logs)
    ref = (time.perf_counter() - t0) * len(starts) / len(subset)
    note = (
        ""
        if len(subset) == len(starts)
        else f" (timed {len(subset)} starts, scaled to {len(starts)})"
    )

    print(f"reference loop (scipy L-BFGS-B, numerical gradients): {ref:.2f} s{note}")
    print(f"vectorised (batched L-BFGS, analytic gradients, polish): {fast:.2f} s")
    print(f"ratio: {ref / fast:.1f}x")
    show("reference", u_ref, f_ref, free)
    show("vectorised", u_fast, f_fast, free)
    print(f"objective difference (reference - vectorised): {f_ref - f_fast:.3g}")
    if args.bootstrap:
        # Every point its own run here: resample points, as a bootstrap of independent points.
        counts = np.random.default_rng(0).multinomial(
            len(N), np.full(len(N), 1 / len(N)), size=args.bootstrap
        )
        t0 = time.perf_counter()
        _, failed = refits(problem, "huber", counts, params)
        print(
            f"bootstrap K={args.bootstrap} (huber, warm-started at the full optimum): "
            f"{time.perf_counter() - t0:.2f} s, {failed} failed"
        )


if __name__ == "__main__":
    main()
