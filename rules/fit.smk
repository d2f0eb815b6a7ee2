# Scaling-law fits: every grid point in one table, each law on each fit set (with bootstrap
# intervals), every fit's prediction of every point with the fit sets' scores, the law-form
# comparison, and loss -> downstream accuracy.


rule collect_points:
    input:
        points=grid_files("results/runs/{run}/points.csv"),
    output:
        "results/fit/points.csv",
    log:
        "results/logs/fit/collect_points.log",
    benchmark:
        "results/benchmarks/fit/collect_points.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        sets=config["fit"]["sets"],
    script:
        "../workflow/scripts/collect_points.py"


rule fit:
    input:
        "results/fit/points.csv",
    output:
        "results/fit/{law}-{fitset}.json",
    log:
        "results/logs/fit/{law}-{fitset}.log",
    benchmark:
        "results/benchmarks/fit/{law}-{fitset}.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        method=config["fit"]["method"],
        tie=config["fit"]["tie"],
        bootstrap=config["fit"]["bootstrap"],
        seed=config["seed"],
    shell:
        "infscale fit --data {input} --law {wildcards.law} --method {params.method}"
        " --tie {params.tie} --fit-set fit_{wildcards.fitset}"
        " --bootstrap {params.bootstrap} --seed {params.seed} --out {output} > {log} 2>&1"


# The paper's test set: every grid point and the trained candidates' (paper Figs 8-10).
rule predictions:
    input:
        points="results/fit/points.csv",
        fits=fit_files("results/fit/{law}-{fitset}.json"),
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
    output:
        predictions="results/fit/predictions.csv",
        scores="results/fit/fit_sets.csv",
        spearman="results/fit/spearman.csv",
    log:
        "results/logs/fit/predictions.log",
    benchmark:
        "results/benchmarks/fit/predictions.tsv"
    conda:
        "../envs/fit.yaml"
    script:
        "../workflow/scripts/predictions.py"


# What the laws fitted on the selection's fit set draw (results/fit/curves/): the IsoFLOP
# curves, the compute-optimal frontier, the loss along R, and every point's compute.
rule fit_curves:
    input:
        points="results/fit/points.csv",
        fits=fit_files("results/fit/{law}-{fitset}.json"),
        chosen="results/fit/chosen.json",
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
    output:
        isoflop="results/fit/curves/isoflop.csv",
        frontier="results/fit/curves/frontier.csv",
        ratio="results/fit/curves/ratio.csv",
        points="results/fit/curves/points.csv",
    log:
        "results/logs/fit/curves.log",
    benchmark:
        "results/benchmarks/fit/curves.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        fit_set=config["select"]["fit_set"],
    script:
        "../workflow/scripts/fit_curves.py"


rule compare_laws:
    input:
        points="results/fit/points.csv",
    output:
        "results/fit/comparison.csv",
    log:
        "results/logs/fit/compare_laws.log",
    benchmark:
        "results/benchmarks/fit/compare_laws.tsv"
    conda:
        "../envs/fit.yaml"
    script:
        "../workflow/scripts/compare_laws.py"


# The law the selection uses: the configured one, or (select.law: auto) the form the
# comparison scores best by progressive extrapolation; fitted with bootstrap intervals.
rule choose_law:
    input:
        points="results/fit/points.csv",
        comparison="results/fit/comparison.csv",
    output:
        "results/fit/chosen.json",
    log:
        "results/logs/fit/choose_law.log",
    benchmark:
        "results/benchmarks/fit/choose_law.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        law=config["select"]["law"],
        fit_set=config["select"]["fit_set"],
        method=config["fit"]["method"],
        tie=config["fit"]["tie"],
        bootstrap=config["fit"]["bootstrap"],
        seed=config["seed"],
    script:
        "../workflow/scripts/choose_law.py"


rule downstream:
    input:
        points="results/fit/points.csv",
        grid_eval=grid_files("results/eval/{run}.json"),
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
        trained_eval=lambda wc: candidate_files(
            "results/eval/candidates/{name}.json", wc
        ),
    output:
        "results/fit/downstream.json",
    log:
        "results/logs/fit/downstream.log",
    benchmark:
        "results/benchmarks/fit/downstream.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        loss_column="val_loss",
    script:
        "../workflow/scripts/downstream.py"
