# The report: tables, figures and the winner, from every result of the run.


rule report:
    input:
        points="results/fit/points.csv",
        fits=fit_files("results/fit/{law}-{fitset}.json"),
        latency=latency_files(),
        grid_eval=grid_files("results/eval/{run}.json"),
        candidates="results/select/candidates.csv",
        selected="results/select/selected.csv",
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
        trained_eval=lambda wc: candidate_files(
            "results/eval/candidates/{name}.json", wc
        ),
    output:
        summary="results/report/summary.md",
        predictions="results/report/predictions.csv",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    params:
        baseline=config["select"]["baseline"],
        config_hash=CONFIG_HASH,
    script:
        "../workflow/scripts/report.py"
