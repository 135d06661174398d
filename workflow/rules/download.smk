# Download the corpus with img2dataset: one job per URL shard (track: world).


rule download_shard:
    input:
        urls=f"{RESULTS}/world/corpus/urls/{{shard}}.parquet",
        images=f"{RESULTS}/world/corpus/images",
        code=package("download"),
    output:
        tar=f"{RESULTS}/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/download/{{shard}}/download.json",
    log:
        script_log("download/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/download/{{shard}}.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        download=canonical(config["download"]),
    script:
        "../scripts/download.py"


rule download_report:
    input:
        expand(f"{RESULTS}/download/{{shard}}/download.json", shard=shard_ids()),
    output:
        f"{RESULTS}/download/summary.json",
    log:
        script_log("download/summary"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/download_summary.py"


use rule download_shard as download_base_shard with:
    input:
        urls=f"{RESULTS}/world/base/urls/{{shard}}.parquet",
        images=f"{RESULTS}/world/base/images",
        code=package("download"),
    output:
        tar=f"{RESULTS}/base/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/base/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/base/download/{{shard}}/download.json",
    log:
        script_log("download/base/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/download/base/{{shard}}.tsv"
