"""The follow-up's conditional scaling law (docs/facts.md, "The conditional law"), written
once, and its fits.

Multiplicative form (default), the paper's:
    L = (1 + a1·ln x + a2/x) · (1 + b1·ln r + b2/r) · (E + A·N^-alpha + B·D^-beta)
Additive form, its variant:
    L = E + A·N^-alpha + B·D^-beta + a1·ln x + a2/x + b1·ln r + b2/r

x = d_model / sqrt(N_nonemb) is the width relative to the size (N_nonemb = N - 2·V·d_model, the
count without the untied embeddings) and r the MLP-to-attention parameter ratio per layer; N in
the Chinchilla part is the total count, as in the other two laws. The paper's a0 and b0 are fixed
at 1: they only scale the whole product, which E, A and B already do, so fitting them would leave
a flat direction. Each factor is U-shaped when its two coefficients are positive: d/dx (a1·ln x +
a2/x) = a1/x - a2/x² vanishes at x* = a2/a1, a minimum (``x_opt``, ``r_opt`` in a fit).

A factor whose variable hardly varies over the fit points (max/min under ``MIN_SPREAD``), or
takes fewer than ``MIN_DISTINCT`` values, cannot be told apart from E: it is dropped, its
coefficients fixed at 0 and not fitted.

``ConditionalProblem`` is the law's problem (infscale.fit.problem), which infscale.fit.methods
fits: every method starts from a Chinchilla fit of the same points (Chinchilla's huber method,
robust), the shape coefficients from 0; ``lm`` is curve_fit (Levenberg-Marquardt, as the
follow-up fits); ``huber`` minimises Huber(1e-3) of log L - log L̂ (``huber_objective``, its
gradient analytic) from the Chinchilla optimum combined with every point of ``SHAPE_STARTS``.

A free vector ``u`` holds log A, log B, log E and the other free parameters raw (the shape
coefficients can be negative); ``where`` maps each parameter to its column (beta tied: alpha's).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from infscale.errors import InputError
from infscale.fit import core, huber, methods, vp
from infscale.fit.huber import DELTA
from infscale.fit.paper import PaperProblem
from infscale.fit.points import Points
from infscale.fit.problem import Problem, arrays_key
from infscale.shapes import ffn_hidden

if TYPE_CHECKING:
    import pandas as pd

# (N, D, {factor: variable} of the factors kept, log loss): what the huber objective reads.
Data = tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray], np.ndarray]

FORMS = ("multiplicative", "additive")
PARAMS = core.PARAMS["conditional"]
CHINCHILLA = core.PARAMS["chinchilla"]
# Factor -> its variable's symbol and its (ln v, 1/v) coefficients.
FACTORS: dict[str, tuple[str, str, str]] = {
    "width": ("x", "a1", "a2"),
    "mlp_ratio": ("r", "b1", "b2"),
}
SHAPE_COEFS = tuple(c for _, *coefs in FACTORS.values() for c in coefs)
OPTIMA = {"width": "x_opt", "mlp_ratio": "r_opt"}
LOG_PARAMS = ("A", "B", "E")  # optimised as logs by the huber method
# A variable must vary by this factor (max/min) over the fit points to keep its factor. The
# open_lm width rounding alone moves r by up to 1.125x at multiple_of 16 (2.0 to 2.25 on the
# default grid), which is not a design variable: a factor fitted to it would fit rounding noise.
MIN_SPREAD = 1.25
# ... and take at least this many distinct values (relative gap over DISTINCT_RTOL): at two
# values v1, v2 the factor's columns ln v and 1/v are, over the points, a constant and one
# indicator, so its two coefficients and E (or, multiplied, the Chinchilla part's scale) leave a
# direction the points do not pin down: the fit's E wanders along it from run to run.
MIN_DISTINCT = 3
DISTINCT_RTOL = 1e-9
# Every shape coefficient kept starts at each of these (3^4 = 81 starts with both factors), so
# that a U (both coefficients > 0), a factor monotone either way and no factor each have a start
# near them. Starts where a factor is <= 0 at some point (infinite objective) are left out.
SHAPE_STARTS = (-0.1, 0.0, 0.1)


# ---------------------------------------------------------------- the variables


def width(N: np.ndarray, d_model: np.ndarray, vocab_size: np.ndarray) -> np.ndarray:
    """x = d_model / sqrt(N - 2·V·d_model): the embeddings (in and out, untied, as
    shapes.param_count counts them) do not grow with depth, so the follow-up leaves them out."""
    non_embedding = np.asarray(N, float) - 2.0 * np.asarray(vocab_size, float) * d_model
    bad = ~(non_embedding > 0)
    if bad.any():
        raise InputError(
            f"N - 2·vocab_size·d_model (the non-embedding count) is not positive for "
            f"{int(bad.sum())} row(s)"
        )
    return np.asarray(d_model, float) / np.sqrt(non_embedding)


def mlp_ratio(
    d_model: np.ndarray,
    ffn: np.ndarray,
    n_heads: np.ndarray | None = None,
    n_kv_heads: np.ndarray | None = None,
    head_dim: np.ndarray | None = None,
) -> np.ndarray:
    """r = MLP / attention parameters per layer = 3·d·f / (d·hd·(2H + 2K)) (SwiGLU; q and o
    H·hd·d each, k and v K·hd·d each). Defaults K = H, hd = d/H: r = 3f / 4d, whatever H."""
    d = np.asarray(d_model, float)
    heads = np.ones_like(d) if n_heads is None else np.asarray(n_heads, float)
    kv = heads if n_kv_heads is None else np.asarray(n_kv_heads, float)
    hd = d / heads if head_dim is None else np.asarray(head_dim, float)
    return 3.0 * d * np.asarray(ffn, float) / (d * hd * (2.0 * heads + 2.0 * kv))


def factor_variables(
    frame: pd.DataFrame, names: Sequence[str] = tuple(FACTORS)
) -> dict[str, np.ndarray]:
    """Each named factor's variable, from a table of points.

    width: N, d_model, vocab_size. mlp_ratio: d_model and ffn_hidden (or multiple_of, for the
    open_lm width), n_heads where n_kv_heads or head_dim is given. An InputError names a
    missing column or a bad value.
    """
    out: dict[str, np.ndarray] = {}
    if "width" in names:
        N, d, V = _columns(frame, ("N", "d_model", "vocab_size"), "width factor")
        out["width"] = width(N, d, V)
    if "mlp_ratio" in names:
        (d,) = _columns(frame, ("d_model",), "MLP-ratio factor")
        if "ffn_hidden" in frame.columns or "multiple_of" not in frame.columns:
            (ffn,) = _columns(frame, ("ffn_hidden",), "MLP-ratio factor")
        else:
            (m,) = _columns(frame, ("multiple_of",), "MLP-ratio factor")
            ffn = np.array([ffn_hidden(int(a), int(b)) for a, b in zip(d, m, strict=True)], float)
        given = [c for c in ("n_kv_heads", "head_dim") if c in frame.columns]
        heads = ["n_heads"] if given or "n_heads" in frame.columns else []
        extra = dict(
            zip(heads + given, _columns(frame, (*heads, *given), "MLP-ratio factor"), strict=True)
        )
        out["mlp_ratio"] = mlp_ratio(d, ffn, **extra)
    return out


def _columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> list[np.ndarray]:
    return core.table_columns(frame, names, f"the conditional law's {what}")


def dropped_factors(variables: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """The factors whose variable varies by less than MIN_SPREAD (max/min) over the points, or
    takes fewer than MIN_DISTINCT distinct values."""
    return tuple(name for name, v in variables.items() if _why_dropped(v) is not None)


def distinct_values(v: np.ndarray) -> int:
    """How many distinct values ``v`` takes, values within DISTINCT_RTOL of each other one."""
    ordered = np.sort(np.asarray(v, float))
    return 1 + int(np.sum(np.diff(ordered) > DISTINCT_RTOL * np.abs(ordered[1:])))


def _why_dropped(v: np.ndarray) -> str | None:
    if np.max(v) < MIN_SPREAD * np.min(v):
        return f"varies only {np.max(v) / np.min(v):.3g}x over the fit points, under {MIN_SPREAD}x"
    distinct = distinct_values(v)
    if distinct < MIN_DISTINCT:
        return (
            f"takes only {distinct} distinct value(s) over the fit points, under "
            f"{MIN_DISTINCT}: its two coefficients and E are not identified"
        )
    return None


def drop_warnings(variables: Mapping[str, np.ndarray], dropped: Sequence[str]) -> list[str]:
    lines = []
    for name in dropped:
        symbol, c_log, c_inv = FACTORS[name]
        lines.append(
            f"the {name} factor is dropped ({c_log} = {c_inv} = 0): {symbol} "
            + _why_dropped(variables[name])
        )
    return lines


# ---------------------------------------------------------------- the law


def conditional_loss(
    form: str,
    params: Mapping[str, Any],
    N: np.ndarray,
    D: np.ndarray,
    variables: Mapping[str, np.ndarray],
) -> np.ndarray:
    """The loss the law predicts; a factor absent from ``variables`` (dropped) contributes
    nothing. Broadcasts: params may be (samples, 1) arrays against (1, points) inputs."""
    base = core.chinchilla_loss(N, D, *(params[p] for p in CHINCHILLA))
    terms = {name: _term(params, name, v) for name, v in variables.items()}
    return _combine(form, base, terms)[0]


def _term(params: Mapping[str, Any], name: str, v: np.ndarray) -> np.ndarray:
    _, c_log, c_inv = FACTORS[name]
    return params[c_log] * np.log(v) + params[c_inv] / v


def _combine(
    form: str, base: np.ndarray, terms: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """L̂ from the Chinchilla part and the shape terms, with dL̂/d(base) and dL̂/d(each term)."""
    if form == "additive":
        return base + sum(terms.values()), 1.0, dict.fromkeys(terms, 1.0)
    factors = {name: 1.0 + t for name, t in terms.items()}
    scale = math.prod(factors.values(), start=1.0)
    pred = base * scale
    return pred, scale, {name: base * scale / f for name, f in factors.items()}


def factor_optimum(c_log: float, c_inv: float) -> float | None:
    """argmin of c_log·ln v + c_inv/v: c_inv / c_log when both are positive (a U), else None
    (monotone, or a maximum)."""
    return c_inv / c_log if c_log > 0 and c_inv > 0 else None


def optima(params: Mapping[str, float], dropped: Sequence[str]) -> dict[str, float | None]:
    """x_opt and r_opt (for each factor kept) of fitted parameters."""
    return {
        OPTIMA[name]: factor_optimum(params[c_log], params[c_inv])
        for name, (_, c_log, c_inv) in FACTORS.items()
        if name not in dropped
    }


def free_params(tie: str, dropped: Sequence[str] = ()) -> tuple[str, ...]:
    """The parameters fitted: the tie mode's, less the coefficients of dropped factors."""
    fixed = {c for name in dropped for c in FACTORS[name][1:]}
    return tuple(p for p in core.free_params("conditional", tie) if p not in fixed)


def positions(tie: str, dropped: Sequence[str] = ()) -> dict[str, int]:
    """Each fitted parameter's column in the free vector (beta tied: alpha's)."""
    free = free_params(tie, dropped)
    tied = core.TIED[tie]
    return {p: free.index("alpha" if p in tied else p) for p in PARAMS if p in free or p in tied}


# ---------------------------------------------------------------- the problem


def vp_columns(kept: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The additive form's shape columns, by coefficient (ln v, 1/v per factor kept): what
    variable projection solves linearly (infscale.fit.vp)."""
    columns = {}
    for name, v in kept.items():
        _, c_log, c_inv = FACTORS[name]
        columns |= {c_log: np.log(v), c_inv: 1.0 / v}
    return columns


def objective(form: str, where: Mapping[str, int], data: Data) -> huber.Objective:
    """:func:`huber_objective` on these points, as infscale.fit.huber.lbfgs takes it."""

    def f_and_g(u: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return huber_objective(u, form, where, data, weights)

    return f_and_g


def huber_objective(
    u: np.ndarray,
    form: str,
    where: Mapping[str, int],
    data: Data,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Huber(log L - log L̂) (weighted: bootstrap counts) and its gradient, for rows of
    free vectors ``u`` (S, p); ``weights`` (S, n) or None.

    ``data`` = (N, D, {factor: variable} of the factors kept, log loss). A row where L̂ <= 0 at
    some point (a factor can go negative) has the value inf, which the line search backs off.
    """
    N, D, kept, log_loss = data
    u = np.asarray(u, dtype=float)
    col = {p: u[:, j, None] for p, j in where.items()}
    log_n, log_d = np.log(N), np.log(D)
    with np.errstate(all="ignore"):
        t_a = np.exp(col["A"] - col["alpha"] * log_n)
        t_b = np.exp(col["B"] - col["beta"] * log_d)
        t_e = np.exp(col["E"])
        terms = {name: _term(col, name, v) for name, v in kept.items()}
        pred, d_base, d_terms = _combine(form, t_a + t_b + t_e, terms)
        outside = ~np.all((pred > 0) & np.isfinite(pred), axis=1)
        resid = log_loss - np.log(pred)
    c = np.clip(resid, -DELTA, DELTA)
    cw = c if weights is None else c * weights
    value = np.sum(cw * (resid - 0.5 * c), axis=1)
    g = -cw / pred  # d value / d L̂ at each point
    g_base = g * d_base
    grad = np.zeros_like(u)
    for p, dp in (
        ("A", np.sum(g_base * t_a, axis=1)),
        ("alpha", -(g_base * t_a) @ log_n),
        ("B", np.sum(g_base * t_b, axis=1)),
        ("beta", -(g_base * t_b) @ log_d),
        ("E", np.sum(g_base, axis=1) * t_e[:, 0]),
    ):
        grad[:, where[p]] += dp
    for name, v in kept.items():
        _, c_log, c_inv = FACTORS[name]
        g_term = g * d_terms[name]
        grad[:, where[c_log]] += g_term @ np.log(v)
        grad[:, where[c_inv]] += g_term @ (1.0 / v)
    value[outside], grad[outside] = np.inf, 0.0
    return value, grad


class ConditionalProblem(Problem):
    """The conditional law in ``form`` (FORMS). A factor whose variable hardly varies over the
    points is ``dropped`` (dropped_factors; a resample keeps its full fit's): its coefficients
    are 0 and not searched. lm starts from the Chinchilla huber fit of the same points with
    every exponent tied (900 grid starts, not 4,500, for a point LM leaves), the shape
    coefficients at 0: the law is then Chinchilla's exactly, so LM starts on the right scale,
    where all ones would not; its bootstrap refits start at the full fit. huber starts from the
    Chinchilla huber optimum in the same tie mode combined with every point of SHAPE_STARTS."""

    params = PARAMS
    log_params = LOG_PARAMS
    refits_from_fit = True

    def __init__(
        self, form: str, tie: str, points: Points, dropped: Sequence[str] | None = None
    ) -> None:
        super().__init__(tie, points)
        if form not in FORMS:
            raise InputError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
        variables = points.variables or {}
        self.form = form
        self.dropped = tuple(dropped_factors(variables) if dropped is None else dropped)
        self.kept = {n: v for n, v in variables.items() if n not in self.dropped}
        self.free = free_params(tie, self.dropped)
        self.where = positions(tie, self.dropped)
        if form != "additive":
            self.cannot["vp"] = (
                "the vp method cannot fit the conditional law's multiplicative form: its shape "
                "factors do not enter linearly (the conditional law's additive form does)"
            )

    @property
    def key(self) -> tuple:
        p, kept = self.points, [self.kept[n] for n in sorted(self.kept)]
        return ("conditional", self.form, self.dropped, *arrays_key(p.N, p.D, p.loss, *kept))

    def predict(self, params: Mapping[str, float]) -> np.ndarray:
        return conditional_loss(self.form, params, self.points.N, self.points.D, self.kept)

    def _huber_objective(self) -> huber.Objective:
        p = self.points
        return objective(self.form, self.where, (p.N, p.D, self.kept, np.log(p.loss)))

    def _chinchilla(self, tie: str) -> PaperProblem:
        p = self.points
        return PaperProblem("chinchilla", "chinchilla", tie, Points(p.N, p.D, p.loss))

    def huber_starts(self) -> np.ndarray:
        chinchilla = self._chinchilla(self.tie)
        u_chin, _ = methods.huber_optimum(chinchilla)
        base = np.zeros(len(self.free))
        for p, j in chinchilla.where.items():
            base[self.where[p]] = u_chin[j]
        coefs = sorted({self.where[c] for name in self.kept for c in FACTORS[name][1:]})
        starts = np.repeat(base[None, :], len(SHAPE_STARTS) ** len(coefs), axis=0)
        starts[:, coefs] = list(itertools.product(SHAPE_STARTS, repeat=len(coefs)))
        return starts

    def lm_start(self) -> dict[str, float]:
        chinchilla = self._chinchilla("all")
        fitted = chinchilla.from_u(methods.huber_optimum(chinchilla)[0])
        return {p: fitted.get(p, 0.0) for p in self.free}

    def vp(self, start: Mapping[str, float] | None) -> dict[str, float]:
        p = self.points
        args = (p.N, p.D, None, p.loss, start, vp_columns(self.kept))
        return vp.fit_vp("conditional", self.params, self.tie, *args)

    def take(self, rows: np.ndarray) -> ConditionalProblem:
        return ConditionalProblem(self.form, self.tie, self.points.take(rows), self.dropped)
