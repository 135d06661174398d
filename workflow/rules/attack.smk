# The Identity Inference Attack: candidate pool, prompts and photos encoded once per model,
# integer predictions, then the k-sweep with seeded draws and the metrics.


rule candidate_pool:
    input:
        unpack(name_lists),
        identities=identities_table(),
        code=package("candidates.py"),
    output:
        f"{RESULTS}/attack/candidates.parquet",
    log:
        script_log("attack/candidates"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        size=config["candidates"]["size"],
        seed=config["candidates"]["seed"],
        top=config["candidates"]["top"],
    script:
        "../scripts/candidates.py"


rule encode_prompts:
    input:
        unpack(model_inputs),
        candidates=rules.candidate_pool.output[0],
        code=package("encode_prompts.py"),
    output:
        f"{RESULTS}/attack/{{model}}/text_emb.npy",
    log:
        script_log("attack/{model}/encode_prompts"),
    benchmark:
        f"{RESULTS}/benchmarks/attack/{{model}}/encode_prompts.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        model=model_params,
        templates=config["attack"]["templates"],
        batch_size=config["attack"]["batch_size"],
        device=config["attack"]["device"],
    script:
        "../scripts/encode_prompts.py"


rule encode_photos:
    input:
        unpack(model_inputs),
        identities=model_identities,
        code=package("encode_photos.py"),
    output:
        emb=f"{RESULTS}/attack/{{model}}/image_emb.npy",
        photos=f"{RESULTS}/attack/{{model}}/photos.parquet",
    log:
        script_log("attack/{model}/encode_photos"),
    benchmark:
        f"{RESULTS}/benchmarks/attack/{{model}}/encode_photos.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        model=model_params,
        batch_size=config["attack"]["batch_size"],
        device=config["attack"]["device"],
    script:
        "../scripts/encode_photos.py"


rule predict:
    input:
        text=rules.encode_prompts.output[0],
        image=rules.encode_photos.output.emb,
        photos=rules.encode_photos.output.photos,
        candidates=rules.candidate_pool.output[0],
        code=package("predict.py"),
    output:
        f"{RESULTS}/attack/{{model}}/predictions.npz",
    log:
        script_log("attack/{model}/predict"),
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        chunk_elems=config["attack"]["chunk_elems"],
        device=config["attack"]["device"],
    script:
        "../scripts/predict.py"


rule sweep:
    input:
        predictions=rules.predict.output[0],
        photos=rules.encode_photos.output.photos,
        counts=model_truth,
        code=package("sweep.py"),
    output:
        scores=f"{RESULTS}/attack/{{model}}/scores.parquet",
        metrics=f"{RESULTS}/attack/{{model}}/metrics.parquet",
        summary=f"{RESULTS}/attack/{{model}}/summary.csv",
    log:
        script_log("attack/{model}/sweep"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        ks=attack_ks(),
        draws=config["attack"]["draws"],
        seed=config["attack"]["seed"],
        tau=config["attack"]["tau"],
        short=config["attack"]["short"],
    script:
        "../scripts/sweep.py"


rule attack_summary:
    input:
        metrics=expand(rules.sweep.output.metrics, model=model_names()),
        code=package("attack_summary.py"),
    output:
        table=report(
            f"{RESULTS}/attack/summary.csv",
            caption="../report/summary.rst",
            category="Answer",
        ),
        headline=f"{RESULTS}/attack/headline.txt",
    log:
        script_log("attack/summary"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        models=model_names(),
        tau=config["attack"]["tau"],
    script:
        "../scripts/attack_summary.py"
