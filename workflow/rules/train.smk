# CLIP training with open_clip's own trainer, one job per model (track L's models and the
# injection grid's (architecture, N) models alike); torchrun inside when gpu > 1.


rule train_clip:
    input:
        unpack(training_inputs),
        arch=arch_config_file,
        code=package("train.py"),
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
        gpu=model_setting("train", "gpus"),
        nodes=model_setting("train", "nodes"),
    params:
        train=model_setting("train"),
        arch=model_setting("arch"),
        runs=training_runs,
    script:
        "../scripts/train.py"
