"""Snakemake script: the law the selection uses, fitted with bootstrap intervals.

``select.law: auto`` takes the form the law comparison scores best by extrapolation
(infscale.fit.choice); another value takes that law with ``fit.tie``. The fit is made by
``infscale fit`` itself (one route to a FIT.json), and the choice and its reason are added.
"""

import sys

from infscale.cli import main
from infscale.fit.choice import choose_form, configured_choice
from infscale.io import read_csv, read_json, write_json
from infscale.script import start_script

start_script(snakemake.log[0])
params = snakemake.params
comparison = read_csv(snakemake.input.comparison)
if params.law == "auto":
    choice = choose_form(comparison, params.method)
else:
    choice = configured_choice(params.law, params.tie, params.method, comparison)
print(f"law for the selection: {choice['law']} {choice['form'] or ''} tie {choice['tie']}")
print(f"because: {choice['reason']}")
args = [
    "fit",
    "--data",
    snakemake.input.points,
    "--law",
    choice["law"],
    "--method",
    choice["method"],
    "--tie",
    choice["tie"],
    "--fit-set",
    f"fit_{params.fit_set}",
    "--bootstrap",
    str(params.bootstrap),
    "--seed",
    str(params.seed),
    "--out",
    snakemake.output[0],
]
if choice["form"] is not None:
    args += ["--form", choice["form"]]
code = main(args)
if code:
    sys.exit(code)
write_json(snakemake.output[0], {**read_json(snakemake.output[0]), "choice": choice})
