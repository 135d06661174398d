# Track C, injection: the cohort (members and non-members drawn from the persons the face filter
# found absent); for each level N, training shards in which every member appears with exactly N
# named pairs (nested across levels), read back and checked; then the grid's summary.


rule cohort:
    input:
        presence=rules.presence.output.table,
        pairs=rules.confirm_pairs.output.report,
        identities=identities_table(),
        code=package("cohort.py"),
    output:
        table=report(
            f"{RESULTS}/inject/cohort.csv",
            caption="../report/cohort.rst",
            category="Controlled injection",
        ),
        identities=f"{RESULTS}/inject/cohort_identities.parquet",
    log:
        script_log("inject/cohort"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cohort=config_provider("injection", "cohort"),
        min_pairs=cohort_min_pairs,
    script:
        "../scripts/cohort.py"


rule inject_level:
    input:
        cohort=rules.cohort.output.table,
        pairs=rules.confirm_pairs.output.pairs,
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


rule injection_summary:
    input:
        metrics=expand(
            f"{RESULTS}/attack/{{model}}/metrics.parquet",
            model=list(GRID),
        ),
        utility=expand(f"{RESULTS}/models/{{model}}/utility.json", model=list(GRID)),
        counts=expand(rules.inject_level.output.stats, n=injected_levels()),
        filter=rules.presence.output.summary,
        classifier=rules.face_classifier.output.report,
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
