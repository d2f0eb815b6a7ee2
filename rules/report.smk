# The report: figures, tables and the story, drawn and formatted from every result of the run. Its outputs are
# infscale.outputs.FIGURES and TABLES (rules/common.smk: report_outputs); `snakemake --report`
# then gathers them, with their captions (workflow/report/), into one HTML file.


rule report:
    input:
        **COMPUTED,
        points="results/fit/points.csv",
        fits=fit_files("results/fit/{law}-{fitset}.json"),
        comparison="results/fit/comparison.csv",
        downstream="results/fit/downstream.json",
        predictions="results/fit/predictions.csv",
        fit_sets="results/fit/fit_sets.csv",
        sweeps="results/latency/sweeps.csv",
        sweep_fits="results/latency/sweep_fits.json",
        throughput="results/latency/throughput.csv",
        gqa="results/latency/sweeps/gqa.csv",
        latency_model="results/latency/model.json",
        crosscheck="results/latency/crosscheck.csv",
        engines=(
            ["results/latency/engines.csv", "results/latency/engines.json"]
            if config["latency"]["engines"]["report"]
            else []
        ),
        crosscheck_summary="results/latency/crosscheck.json",
        selected="results/select/selected.csv",
        chosen="results/fit/chosen.json",
        trained_latency="results/latency/trained.csv",
        budgets="results/select/budgets.json",
        objectives="results/select/objectives.csv",
        throughput_front="results/select/throughput_front.csv",
        models="results/select/models.csv",
        winner="results/select/winner.json",
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
        design_tables=design_round_files("csv"),
        design_summaries=design_round_files("json"),
        reference=list(DESIGN_REFERENCE.values()),
    output:
        **report_outputs(),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    params:
        baseline=config["select"]["baseline"],
        tasks=config["eval"]["tasks"],
        select_fit_set=config["select"]["fit_set"],
        benchmarks="results/benchmarks",
        own_benchmark="results/benchmarks/report.tsv",
        config_hash=CONFIG_HASH,
        seed_runs=DESIGN["seed_runs"] if DESIGN["enabled"] else [],
        run_flops=DESIGN_FLOPS,
        grid_flops=sum(DESIGN_FLOPS.get(run.name, 0.0) for run in GRID),
        reference_dir=DESIGN["reference"],
    script:
        "../workflow/scripts/report.py"
