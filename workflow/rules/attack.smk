# The Identity Inference Attack: candidate pool, prompts and photos encoded once per model,
# integer predictions, then the k-sweep with seeded draws and the metrics.


rule candidate_pool:
    output:
        f"{RESULTS}/attack/candidates.parquet",
    input:
        identities=identities_table(),
        lists=list(candidate_lists().values()),
        code=package("names"),
    params:
        size=config["candidates"]["size"],
        seed=config["candidates"]["seed"],
        lists=candidate_lists(),
    log:
        script_log("attack/candidates"),
    script:
        "../scripts/candidates.py"


rule encode_prompts:
    output:
        f"{RESULTS}/attack/{{model}}/text_emb.npy",
    input:
        unpack(model_inputs),
        candidates=f"{RESULTS}/attack/candidates.parquet",
        code=package("attack", "models", "compat"),
    params:
        model=model_params,
        templates=config["attack"].get("templates", "paper"),
        batch_size=config["attack"].get("batch_size", 256),
        device=config["attack"].get("device", "auto"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        script_log("attack/{model}/encode_prompts"),
    benchmark:
        f"{RESULTS}/benchmarks/attack/{{model}}/encode_prompts.tsv"
    script:
        "../scripts/encode_prompts.py"


rule encode_photos:
    output:
        emb=f"{RESULTS}/attack/{{model}}/image_emb.npy",
        photos=f"{RESULTS}/attack/{{model}}/photos.parquet",
    input:
        unpack(model_inputs),
        identities=identities_table(),
        code=package("attack", "models", "compat"),
    params:
        model=model_params,
        batch_size=config["attack"].get("batch_size", 256),
        device=config["attack"].get("device", "auto"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        script_log("attack/{model}/encode_photos"),
    benchmark:
        f"{RESULTS}/benchmarks/attack/{{model}}/encode_photos.tsv"
    script:
        "../scripts/encode_photos.py"


rule predict:
    output:
        f"{RESULTS}/attack/{{model}}/predictions.npz",
    input:
        text=f"{RESULTS}/attack/{{model}}/text_emb.npy",
        image=f"{RESULTS}/attack/{{model}}/image_emb.npy",
        photos=f"{RESULTS}/attack/{{model}}/photos.parquet",
        candidates=f"{RESULTS}/attack/candidates.parquet",
        code=package("attack"),
    log:
        script_log("attack/{model}/predict"),
    script:
        "../scripts/predict.py"


rule sweep:
    output:
        scores=f"{RESULTS}/attack/{{model}}/scores.parquet",
        metrics=f"{RESULTS}/attack/{{model}}/metrics.parquet",
        summary=f"{RESULTS}/attack/{{model}}/summary.csv",
    input:
        predictions=f"{RESULTS}/attack/{{model}}/predictions.npz",
        photos=f"{RESULTS}/attack/{{model}}/photos.parquet",
        counts=f"{RESULTS}/search/counts.parquet",
        code=package("attack"),
    params:
        ks=attack_ks(),
        draws=config["attack"]["draws"],
        seed=config["attack"]["seed"],
        tau=config["attack"]["tau"],
        short=config["attack"].get("short", "error"),
    log:
        script_log("attack/{model}/sweep"),
    script:
        "../scripts/sweep.py"


rule attack_summary:
    output:
        table=report(
            f"{RESULTS}/attack/summary.csv",
            caption="../report/summary.rst",
            category="Answer",
        ),
        headline=f"{RESULTS}/attack/headline.txt",
    input:
        expand(f"{RESULTS}/attack/{{model}}/metrics.parquet", model=model_names()),
    params:
        models=model_names(),
        tau=config["attack"]["tau"],
    log:
        script_log("attack/summary"),
    script:
        "../scripts/attack_summary.py"
