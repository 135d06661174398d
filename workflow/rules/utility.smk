# Model utility (the paper's table 2): zero-shot top-1/top-5 on a labelled set and image-to-text
# rank@1/@5 on held-out pairs, per model, then one table over every model.


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
