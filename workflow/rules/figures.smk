# The paper's figures as leaf targets, PNG and PDF, captioned in the Snakemake report.


rule figure_metrics_vs_k:
    input:
        summary=f"{RESULTS}/attack/{{model}}/summary.csv",
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
        metrics=f"{RESULTS}/attack/{{model}}/metrics.parquet",
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
        scores=f"{RESULTS}/attack/{{model}}/scores.parquet",
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
        scores=f"{RESULTS}/attack/{{model}}/scores.parquet",
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
