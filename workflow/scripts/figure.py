import json
from pathlib import Path

import pandas as pd

from idia import figures
from idia.smk import finish, log_to

log_to(snakemake.log[0])
name = snakemake.params.figure
model = snakemake.wildcards.model
k, tau = snakemake.params.k, snakemake.params.tau
out = {"png": snakemake.output.png, "pdf": snakemake.output.pdf}
read = {
    key: (pd.read_csv if path.endswith(".csv") else pd.read_parquet)(path)
    for key, path in snakemake.input.items()
    if key not in ("code", "stats")
}
if name == "metrics_vs_k":
    figures.plot_metrics_vs_k(
        read["summary"], title=f"{model}: IDIA vs attack photos (tau={tau})", **out
    )
elif name == "confusion":
    figures.plot_confusion(read["metrics"], k, title=f"{model}: confusion at k={k}", **out)
elif name == "rate_by_bin":
    figures.plot_rate_by_bin(
        read["scores"],
        read["counts"],
        k,
        tau,
        title=f"{model}: TPR / FNR by occurrences (k={k})",
        **out,
    )
elif name == "identities_per_bin":
    figures.plot_identities_per_bin(read["counts"], title="Identities per occurrence bin", **out)
elif name == "tpr_heatmap":
    figures.plot_tpr_heatmap(
        read["scores"],
        read["counts"],
        tau,
        title=f"{model}: TPR over attack photos x occurrences",
        **out,
    )
elif name == "roc":
    summary = json.loads(Path(snakemake.input.stats).read_text())
    intervals = {
        column: (summary[score]["auc_lo"], summary[score]["auc_hi"])
        for column, score in (("vote_score", "vote"), ("combined_score", "combined"))
    }
    figures.plot_roc(
        read["persons"], tau, title=f"{model}: ROC over identities", intervals=intervals, **out
    )
elif name == "pvalue_qq":
    figures.plot_pvalue_qq(read["persons"], title=f"{model}: p-values vs uniform", **out)
else:
    raise ValueError(f"unknown figure {name!r}")
finish(snakemake)
