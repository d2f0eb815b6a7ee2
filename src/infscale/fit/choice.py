"""Which law form the selection uses, chosen by evidence (``select.law: auto``).

The law comparison (compare.py) scores every law × tie on the same points; the selection has to
predict candidates bigger than every grid model, so the score that matters is the progressive
extrapolation error (fit on the smaller size groups, predict the next). The chosen row is the
one with the lowest such error among the laws ``infscale fit`` can fit (infscale.fit.law.BY_FIT: not
inference-additive) by the configured method; rows within ``LOGO_TIE`` of the best are not told
apart by a few folds, and among them the lowest AIC wins (fewer parameters at equal fit). A row
without that score (its fit failed, or every fold did: ``error``, ``warnings``) is out of the
running, and the reason names it and why.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from infscale.errors import InputError
from infscale.fit.law import BY_FIT, LAWS

# Relative margin within which two progressive extrapolation errors count as equal.
LOGO_TIE = 0.05


def choose_form(comparison: pd.DataFrame, method: str) -> dict[str, Any]:
    """The ``choice`` record: law, form, tie, method, the scores and a one-line reason."""
    entrants = comparison[
        comparison["law"].isin([law.name for law in BY_FIT.values()])
        & (comparison["method"] == method)
    ]
    scored = entrants["logo_rel_err"].notna()
    rows = entrants[scored]
    out = "; ".join(_why_out(row) for _, row in entrants[~scored].iterrows())
    if rows.empty:
        raise InputError(
            f"the law comparison scored no {method} form by extrapolation"
            + (f": {out}" if out else "")
        )
    best_err = float(rows["logo_rel_err"].min())
    tied = rows[rows["logo_rel_err"] <= best_err * (1 + LOGO_TIE)]
    pick = tied.sort_values(["aic", "logo_rel_err"], kind="stable").iloc[0]
    chinchilla = rows.loc[rows["law"] == "chinchilla", "logo_rel_err"]
    base = float(chinchilla.min()) if len(chinchilla) else math.nan
    law, form = LAWS[pick["law"]].family, LAWS[pick["law"]].fit_form
    ratio = float(pick["logo_rel_err"]) / base if base > 0 else math.nan
    others = len(tied) - 1
    reason = (
        f"the lowest progressive extrapolation error of the {len(rows)} {method} forms scored"
        + (
            f"; {others} other form(s) within {100 * LOGO_TIE:.0f} % of it, AIC decided"
            if others
            else ""
        )
        + (f"; out of the running: {out}" if out else "")
    )
    return {
        "mode": "auto",
        "law": law,
        "form": form,
        "tie": str(pick["tie"]),
        "method": method,
        "logo_rel_err": float(pick["logo_rel_err"]),
        "aic": float(pick["aic"]),
        "chinchilla_logo_rel_err": base,
        "ratio_to_chinchilla": ratio,
        "reason": reason,
    }


def _why_out(row: pd.Series) -> str:
    """Why a comparison row has no extrapolation score: its error, else its warnings."""
    why = next(
        (str(row[c]) for c in ("error", "warnings") if c in row.index and pd.notna(row[c])),
        "no extrapolation score",
    )
    return f"{row['law']} tie {row['tie']} ({why})"


def configured_choice(
    law: str, tie: str, method: str, comparison: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The ``choice`` record of a law the config names (``select.law`` other than auto)."""
    form = LAWS[law].fit_form
    record = {
        "mode": "configured",
        "law": law,
        "form": form,
        "tie": tie,
        "method": method,
        "logo_rel_err": None,
        "aic": None,
        "chinchilla_logo_rel_err": None,
        "ratio_to_chinchilla": None,
        "reason": f"select.law is {law} in the config",
    }
    if comparison is not None:
        here = comparison[
            (comparison["law"] == law)
            & (comparison["tie"] == tie)
            & (comparison["method"] == method)
        ]
        chinchilla = comparison.loc[
            (comparison["law"] == "chinchilla") & (comparison["method"] == method),
            "logo_rel_err",
        ]
        if len(here) and len(chinchilla):
            err, base = float(here["logo_rel_err"].iloc[0]), float(chinchilla.min())
            record |= {
                "logo_rel_err": err,
                "aic": float(here["aic"].iloc[0]),
                "chinchilla_logo_rel_err": base,
                "ratio_to_chinchilla": err / base if base > 0 else None,
            }
    return record
