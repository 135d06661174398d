# Caption search with DuckDB: per shard, then gathered into counts, membership and bins.


rule search_shard:
    output:
        f"{RESULTS}/search/hits/{{shard}}.parquet",
    input:
        captions=caption_parquet,
        identities=identities_table(),
        code=package("search"),
    params:
        match=config["search"]["match"],
        column=caption_column(),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        script_log("search/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/search/{{shard}}.tsv"
    script:
        "../scripts/search_shard.py"


rule gather_counts:
    output:
        parquet=f"{RESULTS}/search/counts.parquet",
        csv=report(
            f"{RESULTS}/search/counts.csv",
            caption="../report/counts.rst",
            category="Membership",
        ),
    input:
        hits=expand(f"{RESULTS}/search/hits/{{shard}}.parquet", shard=shard_ids()),
        identities=identities_table(),
        code=package("search"),
    params:
        bin_edges=config["search"]["bin_edges"],
        bin_labels=config["search"].get("bin_labels"),
    log:
        script_log("search/gather"),
    script:
        "../scripts/gather_counts.py"


rule truth_check:
    output:
        f"{RESULTS}/search/truth_check.json",
    input:
        counts=f"{RESULTS}/search/counts.parquet",
        truth=f"{RESULTS}/world/truth.parquet",
        downloads=f"{RESULTS}/download/summary.json",
    log:
        script_log("search/truth_check"),
    script:
        "../scripts/truth_check.py"
