# Evidence at the person level: ROC over identities, bootstrap intervals, Clopper–Pearson bounds,
# calibrated p-values and Benjamini–Hochberg decisions, per model.


rule person_stats:
    input:
        predictions=rules.predict.output[0],
        text=rules.encode_prompts.output[0],
        image=rules.encode_photos.output.emb,
        photos=rules.encode_photos.output.photos,
        candidates=rules.candidate_pool.output[0],
        counts=model_truth,
        code=package("person_stats.py"),
    output:
        persons=report(
            f"{RESULTS}/stats/{{model}}/persons.csv",
            caption="../report/persons.rst",
            category="Identities",
            subcategory="{model}",
        ),
        summary=f"{RESULTS}/stats/{{model}}/summary.json",
        taus=report(
            f"{RESULTS}/stats/{{model}}/operating_points.csv",
            caption="../report/operating_points.rst",
            category="Answer",
            subcategory="{model}",
        ),
    log:
        script_log("stats/{model}/person_stats"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        tau=config["attack"]["tau"],
        stats=canonical(config["stats"]),
    script:
        "../scripts/person_stats.py"


rule stats_summary:
    input:
        summaries=expand(rules.person_stats.output.summary, model=model_names()),
        code=package("stats_summary.py"),
    output:
        report(
            f"{RESULTS}/stats/summary.csv",
            caption="../report/stats_summary.rst",
            category="Answer",
        ),
    log:
        script_log("stats/summary"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        models=model_names(),
    script:
        "../scripts/stats_summary.py"
