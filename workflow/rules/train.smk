# CLIP training with open_clip's own trainer, one job per model; torchrun inside when gpu > 1.


rule train_clip:
    input:
        shards=training_shards(),
        stats=expand(f"{RESULTS}/download/{{shard}}/download.json", shard=shard_ids()),
        arch=arch_config,
        code=package("trainer", "compat", "models"),
    output:
        weights=f"{RESULTS}/models/{{model}}/open_clip_model.safetensors",
        config=f"{RESULTS}/models/{{model}}/open_clip_config.json",
        card=f"{RESULTS}/models/{{model}}/card.json",
    log:
        script_log("train/{model}"),
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 64  # scaled down to the cores the run is given
    resources:
        mem_mb=8000,
        runtime=600,
        gpu=lambda wildcards: config["models"][wildcards.model]["train"].get("gpus", 0),
    params:
        train=lambda wildcards: canonical(config["models"][wildcards.model]["train"]),
        arch=lambda wildcards: config["models"][wildcards.model]["arch"],
        runs=lambda wildcards: f"{RESULTS}/models/{wildcards.model}/runs",
    script:
        "../scripts/train.py"
