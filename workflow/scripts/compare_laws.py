"""Snakemake script: the law comparison table, by the code of ``infscale compare``: every law
(the additive variants included) in every tie mode by Chinchilla's huber method, and the three
laws the paper's lm procedure fits with tie all (its published setting), and with fit.method vp
every law by variable projection (the multiplicative conditional law's rows carry an error), in
one table;
select.law auto reads the rows of the configured method (infscale.fit.choice). A law that
cannot run has its row with the reason in ``error``, printed to the log."""

import pandas as pd

from infscale.fit.compare import DEFAULT_LAWS, LAWS, compare_laws
from infscale.io import read_csv, write_csv
from infscale.script import start_script

start_script(snakemake.log[0])
points = read_csv(snakemake.input.points)
tables = [
    compare_laws(points, list(LAWS), "huber"),
    compare_laws(points, DEFAULT_LAWS, "lm", ties=["all"]),
]
if snakemake.config["fit"]["method"] == "vp":  # select.law auto reads the configured method's
    tables.append(compare_laws(points, list(LAWS), "vp"))
table = pd.concat(tables, ignore_index=True)
write_csv(snakemake.output[0], table)
print(table.to_string())
for row in table[table["error"].notna()].itertuples():  # out of select.law auto's running
    print(f"{row.law} tie {row.tie} ({row.method}) did not run: {row.error}")
