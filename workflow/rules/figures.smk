# The figures as leaf targets, PNG and PDF, captioned in the Snakemake report: the paper's per
# model, the person-level ones (ROC, p-value QQ) and track C's per architecture over the levels N.


rule figure_metrics_vs_k:
    input:
        summary=rules.sweep.output.summary,
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/metrics_vs_k.png",
            caption="../report/metrics_vs_k.rst",
            category="Figures",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/metrics_vs_k.pdf",
    log:
        script_log("figures/{model}/metrics_vs_k"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="metrics_vs_k",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
        spec=figure_model_spec,
    script:
        "../scripts/figure.py"


rule figure_confusion:
    input:
        metrics=rules.sweep.output.metrics,
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/confusion.png",
            caption="../report/confusion.rst",
            category="Figures",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/confusion.pdf",
    log:
        script_log("figures/{model}/confusion"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="confusion",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"


rule figure_rate_by_bin:
    input:
        scores=rules.sweep.output.scores,
        counts=model_truth,
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/rate_by_bin.png",
            caption="../report/rate_by_bin.rst",
            category="Figures",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/rate_by_bin.pdf",
    log:
        script_log("figures/{model}/rate_by_bin"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="rate_by_bin",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"


rule figure_identities_per_bin:
    input:
        counts=model_truth,
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/identities_per_bin.png",
            caption="../report/identities_per_bin.rst",
            category="Figures",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/identities_per_bin.pdf",
    log:
        script_log("figures/{model}/identities_per_bin"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="identities_per_bin",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"


rule figure_tpr_heatmap:
    input:
        scores=rules.sweep.output.scores,
        counts=model_truth,
        code=package("figure.py"),
    output:
        png=report(
            f"{RESULTS}/figures/{{model}}/tpr_heatmap.png",
            caption="../report/tpr_heatmap.rst",
            category="Figures",
            subcategory="{model}",
        ),
        pdf=f"{RESULTS}/figures/{{model}}/tpr_heatmap.pdf",
    log:
        script_log("figures/{model}/tpr_heatmap"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="tpr_heatmap",
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure.py"


rule figure_roc:
    input:
        persons=rules.person_stats.output.persons,
        stats=rules.person_stats.output.summary,
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
        persons=rules.person_stats.output.persons,
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


rule figure_by_n:
    input:
        scores=injected_scores,
        truth=expand(rules.inject_level.output.truth, n=injected_levels()),
        code=package("figure_by_n.py"),
    output:
        rate=report(
            f"{RESULTS}/figures/{{name}}/rate_by_n.png",
            caption="../report/rate_by_n.rst",
            category="Controlled injection",
            subcategory="{name}",
        ),
        rate_pdf=f"{RESULTS}/figures/{{name}}/rate_by_n.pdf",
        heatmap=report(
            f"{RESULTS}/figures/{{name}}/tpr_heatmap_by_n.png",
            caption="../report/tpr_heatmap_by_n.rst",
            category="Controlled injection",
            subcategory="{name}",
        ),
        heatmap_pdf=f"{RESULTS}/figures/{{name}}/tpr_heatmap_by_n.pdf",
    log:
        script_log("figures/{name}/by_n"),
    wildcard_constraints:
        name="|".join(INJECTION["models"]) if INJECTION else "^$",
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        levels=injected_levels(),
        k=config["attack"]["k_max"],
        tau=config["attack"]["tau"],
    script:
        "../scripts/figure_by_n.py"
