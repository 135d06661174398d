# Download the corpus with img2dataset: one job per URL shard (track: world).


rule download_shard:
    output:
        tar=f"{RESULTS}/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/download/{{shard}}/download.json",
    input:
        urls=f"{RESULTS}/world/corpus/urls/{{shard}}.parquet",
        images=f"{RESULTS}/world/corpus/images",
        code=package("download"),
    params:
        download=config["download"],
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        script_log("download/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/download/{{shard}}.tsv"
    script:
        "../scripts/download.py"


rule download_report:
    output:
        f"{RESULTS}/download/summary.json",
    input:
        expand(f"{RESULTS}/download/{{shard}}/download.json", shard=shard_ids()),
    log:
        script_log("download/summary"),
    script:
        "../scripts/download_summary.py"
