# Scaling-law fits: every grid point in one table, then each law on each fit set.


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
    shell:
        "infscale fit --data {input} --law {wildcards.law} --method {params.method}"
        " --tie {params.tie} --fit-set fit_{wildcards.fitset} --out {output} > {log} 2>&1"
