# Evidence at the person level: ROC over identities, bootstrap intervals, Clopper–Pearson bounds,
# calibrated p-values and Benjamini–Hochberg decisions, per model.


rule person_stats:
    input:
        predictions=f"{RESULTS}/attack/{{model}}/predictions.npz",
        text=f"{RESULTS}/attack/{{model}}/text_emb.npy",
        image=f"{RESULTS}/attack/{{model}}/image_emb.npy",
        photos=f"{RESULTS}/attack/{{model}}/photos.parquet",
        candidates=f"{RESULTS}/attack/candidates.parquet",
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
        summaries=expand(f"{RESULTS}/stats/{{model}}/summary.json", model=model_names()),
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


rule figure_roc:
    input:
        persons=f"{RESULTS}/stats/{{model}}/persons.csv",
        stats=f"{RESULTS}/stats/{{model}}/summary.json",
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/roc.png",
            caption="../report/roc.rst",
            category="Answer",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/roc.pdf",
    log:
        script_log("figures/{model}/roc"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="roc",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"


rule figure_pvalue_qq:
    input:
        persons=f"{RESULTS}/stats/{{model}}/persons.csv",
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/pvalue_qq.png",
            caption="../report/pvalue_qq.rst",
            category="Answer",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/pvalue_qq.pdf",
    log:
        script_log("figures/{model}/pvalue_qq"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="pvalue_qq",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"
