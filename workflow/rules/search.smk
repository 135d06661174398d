# Caption search (DuckDB reads the captions, an Aho-Corasick automaton matches the names): per
# shard, then gathered into counts, membership and bins.


rule search_shard:
    input:
        captions=caption_parquet,
        identities=identities_table(),
        code=package("search"),
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
        hits=expand(f"{RESULTS}/search/hits/{{shard}}.parquet", shard=shard_ids()),
        identities=identities_table(),
        code=package("search"),
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
