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
        utility=expand(f"{RESULTS}/models/{{model}}/utility.json", model=model_names()),
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
