# Selection (paper Fig. 6): predict each candidate's loss, keep the top-k within the budgets;
# once the chosen are trained and evaluated, pick the one to release (the winner).


rule candidates:
    input:
        latency=candidate_latency_files,
        throughput="results/latency/candidate_throughput.csv",
        model=([] if LATENCY_SOURCE == "measure" else ["results/latency/model.json"]),
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
        latency_source=LATENCY_SOURCE,
    script:
        "../workflow/scripts/candidates.py"


# select.latency_source measure_top: predict every candidate's latency and loss, and shortlist
# the best few for measurement (the candidates rule then waits for those measurements).
checkpoint latency_shortlist:
    input:
        fit="results/fit/chosen.json",
        model="results/latency/model.json",
    output:
        "results/select/latency_shortlist.csv",
    log:
        "results/logs/select/latency_shortlist.log",
    benchmark:
        "results/benchmarks/select/latency_shortlist.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        candidates=[run.name for run in candidate_runs(config)],
    script:
        "../workflow/scripts/latency_shortlist.py"


checkpoint select:
    input:
        fit="results/fit/chosen.json",
        candidates="results/select/candidates.csv",
    output:
        selected="results/select/selected.csv",
        budgets="results/select/budgets.json",
        objectives="results/select/objectives.csv",
        front="results/select/throughput_front.csv",
    log:
        "results/logs/select/select.log",
    benchmark:
        "results/benchmarks/select/select.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        select=config["select"],
    script:
        "../workflow/scripts/select.py"


# The release pick: the evaluated models (grid and trained candidates, with the
# accuracy-latency Pareto front) and the winner against the baseline (paper Fig. 6, step E).
rule winner:
    input:
        points="results/fit/points.csv",
        latency=latency_files(),
        grid_eval=grid_files("results/eval/{run}.json"),
        selected="results/select/selected.csv",
        trained_points=lambda wc: candidate_files(
            "results/runs/candidates/{name}/points.csv", wc
        ),
        trained_eval=lambda wc: candidate_files(
            "results/eval/candidates/{name}.json", wc
        ),
    output:
        winner="results/select/winner.json",
        models="results/select/models.csv",
        flops="results/select/training_flops.json",
    log:
        "results/logs/select/winner.log",
    benchmark:
        "results/benchmarks/select/winner.tsv"
    conda:
        "../envs/fit.yaml"
    params:
        baseline=config["select"]["baseline"],
        timing_z=config["select"]["timing_z"],
    script:
        "../workflow/scripts/winner.py"


# The accuracy the loss -> accuracy fit predicts: each candidate's, from its predicted loss, and
# the fit's curve over the evaluated models' loss range (paper Fig. 7).
rule predicted_accuracy:
    input:
        downstream="results/fit/downstream.json",
        selected="results/select/selected.csv",
        models="results/select/models.csv",
    output:
        candidates="results/select/accuracy.csv",
        curve="results/select/accuracy_curve.csv",
    log:
        "results/logs/select/accuracy.log",
    benchmark:
        "results/benchmarks/select/accuracy.tsv"
    conda:
        "../envs/fit.yaml"
    script:
        "../workflow/scripts/accuracy.py"
