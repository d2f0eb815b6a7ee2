# Selection (paper Fig. 6): predict each candidate's loss, keep the top-k within the budgets.


rule candidates:
    input:
        latency=[
            f"results/latency/{run.shape.label}.json" for run in candidate_runs(config)
        ],
    output:
        "results/select/candidates.csv",
    log:
        "results/logs/select/candidates.log",
    benchmark:
        "results/benchmarks/select/candidates.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        candidates=[run.name for run in candidate_runs(config)],
    script:
        "../workflow/scripts/candidates.py"


checkpoint select:
    input:
        fit=f"results/fit/{config['select']['law']}-{config['select']['fit_set']}.json",
        candidates="results/select/candidates.csv",
    output:
        selected="results/select/selected.csv",
    log:
        "results/logs/select/select.log",
    benchmark:
        "results/benchmarks/select/select.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        k=config["select"]["k"],
        budgets=budget_args(config["select"]),
    shell:
        "infscale select --fit {input.fit} --candidates {input.candidates} --k {params.k}"
        " {params.budgets} --out {output.selected} > {log} 2>&1"
