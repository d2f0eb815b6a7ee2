# infscale: train a shape grid, time it, evaluate it, fit the scaling laws, select and train the
# top-k shapes under parameter, token and latency budgets, and report the winner.
# Logic lives in src/infscale; rules only wire files together (see DESIGN.md).


# The embedded default, unless the user names a config file: a --configfile would otherwise be
# deep-merged into the default and add its grid to the default's instead of replacing it.
if not workflow.config_settings.configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/latency.smk"
include: "rules/eval.smk"
include: "rules/fit.smk"
include: "rules/select.smk"
include: "rules/design.smk"
include: "rules/report.smk"


rule all:
    input:
        rules.report.output,
        removed_grid_checkpoints,
        removed_candidate_checkpoints,
