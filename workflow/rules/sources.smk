# Acquisition: every external input, fetched (one job per file or URL shard), checked against
# its pinned checksum, and turned into the study's identities. The same rules run on the
# embedded world (served on 127.0.0.1) and on the paper's public sources.


rule fetch_source:
    input:
        checksums=fetch_checksums,
        code=package("fetch_source.py"),
    output:
        f"{RESOURCES}/{{group}}/{{file}}",
    log:
        script_log("sources/{group}/{file}"),
    wildcard_constraints:
        group="laion|cc3m|names",
        file=fetched_files(),
    retries: 2
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=240,
    params:
        location=fetch_location,
        timeout=config["download"]["timeout"],
        retries=config["download"]["retries"],
    script:
        "../scripts/fetch_source.py"


rule identity_plan:
    input:
        lists=SOURCES["facescrub"],
        folders=SOURCES["extra_identities"],
        code=package("identity_plan.py"),
    output:
        plan=f"{RESULTS}/identities/plan.parquet",
        excluded=report(
            f"{RESULTS}/identities/excluded_lines.csv",
            caption="../report/excluded_lines.rst",
            category="Identities",
        ),
        urls=expand(
            f"{RESULTS}/identities/urls/{{shard}}.parquet", shard=identity_shard_ids()
        ),
    log:
        script_log("identities/plan"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/identity_plan.py"


rule download_identities:
    input:
        urls=f"{RESULTS}/identities/urls/{{shard}}.parquet",
        code=package("download.py"),
    output:
        tar=f"{RESULTS}/identities/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/identities/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/identities/download/{{shard}}/download.json",
    log:
        script_log("identities/download/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/identities/download/{{shard}}.tsv"
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        download=canonical(config["download"]),
        columns={"url": "url", "keep": {"row": "row"}},
        # FaceScrub pins the raw bytes' sha256: keep them as downloaded and hash them
        images={"compute_hash": "sha256", "keep_bytes": True},
    script:
        "../scripts/download.py"


rule identities:
    input:
        plan=rules.identity_plan.output.plan,
        tars=expand(rules.download_identities.output.tar, shard=identity_shard_ids()),
        parquets=expand(
            rules.download_identities.output.parquet, shard=identity_shard_ids()
        ),
        code=package("identities.py"),
    output:
        table=identities_table(),
        photos=directory(f"{RESULTS}/identities/photos"),
        crops=directory(f"{RESULTS}/identities/crops"),
        report=report(
            f"{RESULTS}/identities/report.csv",
            caption="../report/identities.rst",
            category="Identities",
        ),
        urls=f"{RESULTS}/identities/outcomes.parquet",
    log:
        script_log("identities/identities"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        min_photos=config["identities"]["min_photos"],
    script:
        "../scripts/identities.py"


rule base_urls:
    input:
        tsv=base_tsv(),
        code=package("base_urls.py"),
    output:
        expand(f"{RESULTS}/base/urls/{{shard}}.parquet", shard=base_shard_ids()),
    log:
        script_log("base/urls"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        "../scripts/base_urls.py"


rule pair_urls:
    input:
        hits=f"{RESULTS}/search/hits/{{shard}}.parquet",
        metadata=caption_parquet,
        code=package("pair_urls.py"),
    output:
        f"{RESULTS}/pairs/urls/{{shard}}.parquet",
    log:
        script_log("pairs/urls/{shard}"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        columns=laion_columns(),
    script:
        "../scripts/pair_urls.py"


use rule download_identities as download_pairs with:
    input:
        urls=rules.pair_urls.output[0],
        code=package("download.py"),
    output:
        tar=f"{RESULTS}/pairs/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/pairs/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/pairs/download/{{shard}}/download.json",
    log:
        script_log("pairs/download/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/pairs/download/{{shard}}.tsv"
    params:
        download=canonical(config["download"]),
        columns={
            "url": "url",
            "caption": "caption",
            "keep": {"person_id": "person_id", "sample_id": "sample_id"},
        },
        images={},


rule confirm_pairs:
    input:
        tars=expand(rules.download_pairs.output.tar, shard=shard_ids()),
        parquets=expand(rules.download_pairs.output.parquet, shard=shard_ids()),
        urls=expand(rules.pair_urls.output[0], shard=shard_ids()),
        model=f"{RESULTS}/faces/classifier/classifier.pt",
        code=package("confirm_pairs.py"),
    output:
        pairs=f"{RESULTS}/pairs/pairs.parquet",
        checked=f"{RESULTS}/pairs/checked.parquet",
        images=directory(f"{RESULTS}/pairs/images"),
        report=report(
            f"{RESULTS}/pairs/report.csv",
            caption="../report/pairs.rst",
            category="Controlled injection",
        ),
    log:
        script_log("pairs/confirm"),
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        haar=canonical(config["haar"]),
        min_confidence=config_provider("injection", "pairs", "min_confidence"),
    script:
        "../scripts/confirm_pairs.py"
