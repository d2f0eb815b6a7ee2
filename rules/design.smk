# Training in rounds (config `design`, docs/design.md). Round 0 trains design.seed_runs; the
# checkpoint design_round fits every run of the earlier rounds and designs round r among the
# proposals (fixed run names, known at parse time). Reading a round's table (design_files)
# makes the DAG wait for it and then grow by its runs; the final fit uses every round's runs.


checkpoint design_round:
    input:
        points=lambda wc: design_files(
            "results/runs/{run}/points.csv", int(wc.round) - 1
        ),
        candidates="results/select/candidates.csv",
    output:
        table="results/design/round_{round}.csv",
        summary="results/design/round_{round}.json",
        fit="results/design/round_{round}_fit.json",
        points="results/design/round_{round}_points.csv",
    log:
        "results/logs/design/round_{round}.log",
    benchmark:
        "results/benchmarks/design/round_{round}.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        law=config["design"]["law"],
        method=config["fit"]["method"],
        tie=config["design"]["tie"],
        bootstrap=config["fit"]["bootstrap"],
        seed=config["seed"],
        design_seed=config["design"]["seed"],
        budget=DESIGN_BUDGET,
        select=config["select"],
    script:
        "../workflow/scripts/design_round.py"
