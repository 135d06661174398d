# Caption search (DuckDB reads the captions, an Aho-Corasick automaton matches the names): per
# shard, then gathered into counts, membership and bins.


rule search_shard:
    input:
        captions=caption_parquet,
        identities=identities_table(),
        code=package("search_shard.py"),
    output:
        f"{RESULTS}/search/hits/{{shard}}.parquet",
    log:
        script_log("search/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/search/{{shard}}.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        match=config["search"]["match"],
        column=laion_columns()["caption"],
    script:
        "../scripts/search_shard.py"


rule gather_counts:
    input:
        hits=expand(rules.search_shard.output[0], shard=shard_ids()),
        identities=identities_table(),
        code=package("gather_counts.py"),
    output:
        parquet=f"{RESULTS}/search/counts.parquet",
        csv=report(
            f"{RESULTS}/search/counts.csv",
            caption="../report/counts.rst",
            category="Membership",
        ),
    log:
        script_log("search/gather"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        bin_edges=config["search"]["bin_edges"],
        bin_labels=config["search"].get("bin_labels"),
    script:
        "../scripts/gather_counts.py"


rule compare_counts:
    input:
        counts=rules.gather_counts.output.parquet,
        reference=reference_counts(),
        code=package("compare_counts.py"),
    output:
        table=report(
            f"{RESULTS}/search/reference_comparison.csv",
            caption="../report/reference_comparison.rst",
            category="Membership",
        ),
        summary=f"{RESULTS}/search/reference_comparison.json",
        png=report(
            f"{RESULTS}/figures/reference_counts.png",
            caption="../report/reference_comparison.rst",
            category="Membership",
        ),
        pdf=f"{RESULTS}/figures/reference_counts.pdf",
    log:
        script_log("search/compare_counts"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/compare_counts.py"
