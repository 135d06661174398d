# Model utility (the paper's table 2): zero-shot top-1/top-5 on a labelled set and image-to-text
# rank@1/@5 on held-out pairs, per model, then one table over every model. The held-out pairs
# are acquired like the base corpus: CC3M's validation TSV (sources.cc3m.validation), its first
# injection.utility.n_pairs rows (all when not set) downloaded with img2dataset.


rule heldout_urls:
    input:
        tsv=heldout_tsv,
        code=package("heldout_urls.py"),
    output:
        f"{RESULTS}/heldout/urls/validation.parquet",
    log:
        script_log("heldout/urls"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        limit=heldout_limit,
    script:
        "../scripts/heldout_urls.py"


use rule download_shard as download_heldout with:
    input:
        urls=f"{RESULTS}/heldout/urls/{{shard}}.parquet",
        code=package("download.py"),
    output:
        tar=f"{RESULTS}/heldout/download/{{shard}}/00000.tar",
        parquet=f"{RESULTS}/heldout/download/{{shard}}/00000.parquet",
        stats=f"{RESULTS}/heldout/download/{{shard}}/download.json",
    log:
        script_log("heldout/download/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/heldout/download/{{shard}}.tsv"
    params:
        download=canonical(config["download"]),
        columns={"url": "url", "caption": "caption"},
        # the base corpus's CC3M recipe (image size, aspect ratio) on the validation images
        images=base_image_options,


rule heldout_pairs:
    input:
        tar=expand(rules.download_heldout.output.tar, shard="validation"),
        parquet=expand(rules.download_heldout.output.parquet, shard="validation"),
        stats=expand(rules.download_heldout.output.stats, shard="validation"),
        code=package("heldout_pairs.py"),
    output:
        pairs=f"{RESULTS}/heldout/pairs.parquet",
        images=directory(f"{RESULTS}/heldout/images"),
        report=f"{RESULTS}/heldout/report.json",
    log:
        script_log("heldout/pairs"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/heldout_pairs.py"


rule utility:
    input:
        unpack(model_inputs),
        unpack(utility_inputs),
        code=package("utility.py"),
    output:
        f"{RESULTS}/models/{{model}}/utility.json",
    log:
        script_log("utility/{model}"),
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        model=model_params,
        templates=utility_templates,
        batch_size=config["attack"]["batch_size"],
        device=config["attack"]["device"],
    script:
        "../scripts/utility.py"


rule utility_table:
    input:
        utility=expand(rules.utility.output[0], model=model_names()),
        code=package("utility_table.py"),
    output:
        table=report(
            f"{RESULTS}/utility/utility.csv",
            caption="../report/utility.rst",
            category="Controlled injection",
        ),
        markdown=f"{RESULTS}/utility/utility.md",
    log:
        script_log("utility/table"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        models=utility_models(MODELS),
    script:
        "../scripts/utility_table.py"


if INJECTION and "validation" in SOURCES["cc3m"]:
    # what the utility reads, kept current like every other input (kept_outputs)
    KEPT += [
        ("heldout_urls", {}),
        ("download_heldout", {"shard": ["validation"]}),
        ("heldout_pairs", {}),
    ]
