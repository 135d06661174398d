# Track C, injection: for each level N, training shards in which every member appears with
# exactly N named pairs (nested across levels), read back and checked; then the grid's summary.


rule inject_level:
    input:
        cohort=f"{RESULTS}/inject/cohort.csv",
        pairs=injection_pairs(),
        base=base_tars(),
        code=package("inject.py"),
    output:
        shards=expand(
            f"{RESULTS}/inject/n{{n}}/{{i}}.tar",
            i=inject_shard_ids(),
            allow_missing=True,
        ),
        counts=f"{RESULTS}/inject/n{{n}}/counts.parquet",
        truth=f"{RESULTS}/inject/n{{n}}/truth.parquet",
        stats=f"{RESULTS}/inject/n{{n}}/inject.json",
    log:
        script_log("inject/n{n}"),
    benchmark:
        f"{RESULTS}/benchmarks/inject/n{{n}}.tsv"
    wildcard_constraints:
        n=r"\d+",
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        levels=injected_levels(),
        seed=config_provider("injection", "seed"),
        shards=config_provider("injection", "shards"),
    script:
        "../scripts/inject.py"


rule figure_by_n:
    input:
        scores=injected_scores,
        truth=expand(f"{RESULTS}/inject/n{{n}}/truth.parquet", n=injected_levels()),
        code=package("figure_by_n.py"),
    output:
        rate=report(
            f"{RESULTS}/figures/{{name}}/rate_by_n.png",
            caption="../report/rate_by_n.rst",
            category="Controlled injection",
            subcategory="{name}",
        ),
        rate_pdf=f"{RESULTS}/figures/{{name}}/rate_by_n.pdf",
        heatmap=report(
            f"{RESULTS}/figures/{{name}}/tpr_heatmap_by_n.png",
            caption="../report/tpr_heatmap_by_n.rst",
            category="Controlled injection",
            subcategory="{name}",
        ),
        heatmap_pdf=f"{RESULTS}/figures/{{name}}/tpr_heatmap_by_n.pdf",
    log:
        script_log("figures/{name}/by_n"),
    wildcard_constraints:
        name="|".join(INJECTION["models"]) if INJECTION else "^$",
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        levels=injected_levels(),
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure_by_n.py"


rule injection_summary:
    input:
        metrics=expand(
            f"{RESULTS}/attack/{{model}}/metrics.parquet",
            model=list(GRID),
        ),
        utility=expand(f"{RESULTS}/models/{{model}}/utility.json", model=list(GRID)),
        counts=expand(f"{RESULTS}/inject/n{{n}}/inject.json", n=injected_levels()),
        filter=f"{RESULTS}/faces/filter.json",
        classifier=f"{RESULTS}/faces/classifier/report.json",
        code=package("injection_summary.py"),
    output:
        report(
            f"{RESULTS}/inject/summary.csv",
            caption="../report/injection_summary.rst",
            category="Controlled injection",
        ),
    log:
        script_log("inject/summary"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        models={
            name: spec["injection"] | {"arch": spec["arch"]}
            for name, spec in GRID.items()
        },
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/injection_summary.py"
