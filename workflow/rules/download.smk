# Download the image corpora with img2dataset: one job per URL shard. The web corpus (LAION-
# format metadata, for training the models of track L) and the base corpus (CC3M, track C).


rule download_shard:
    input:
        urls=caption_parquet,
        code=package("download.py"),
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
        # the user's file: its column names come from the config, whose key an error names
        columns={
            "url": laion_columns()["url"],
            "caption": laion_columns()["caption"],
            "keep": {"key": laion_columns()["key"]},
            "config_key": LAION_COLUMNS_KEY,
        },
        images={},
    script:
        "../scripts/download.py"


rule download_report:
    input:
        stats=expand(rules.download_shard.output.stats, shard=shard_ids()),
        code=package("download_summary.py"),
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
        urls=f"{RESULTS}/base/urls/{{shard}}.parquet",
        code=package("download.py"),
    output:
        tar=f"{RESULTS}/base/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/base/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/base/download/{{shard}}/download.json",
    log:
        script_log("download/base/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/download/base/{{shard}}.tsv"
    params:
        download=canonical(config["download"]),
        columns={"url": "url", "caption": "caption"},
        # the CC3M recipe: at most `image_size` px, no aspect ratio beyond `max_aspect_ratio`
        images=base_image_options,
