from pathlib import Path

import pandas as pd

from idia.smk import finish, log_to

log_to(snakemake.log[0])
rows = []
for model, path in zip(snakemake.params.models, snakemake.input.metrics):
    metrics = pd.read_parquet(path)
    k = int(metrics["k"].max())
    at_k = metrics[metrics["k"] == k]
    row = {
        "model": model,
        "k": k,
        "draws": len(at_k),
        "tau": snakemake.params.tau,
        "members": int(at_k["tp"].iloc[0] + at_k["fn"].iloc[0]),
        "non_members": int(at_k["fp"].iloc[0] + at_k["tn"].iloc[0]),
    }
    for metric in ("accuracy", "tpr", "fnr", "fpr", "tnr"):
        row[f"{metric}_mean"] = at_k[metric].mean()
        row[f"{metric}_sd"] = at_k[metric].std(ddof=1) if len(at_k) > 1 else 0.0
    rows.append(row)
table = pd.DataFrame(rows)
table.to_csv(snakemake.output.table, index=False, float_format="%.4f")
lines = [
    f"idia: {r.model}: TPR {r.tpr_mean:.2f} ± {r.tpr_sd:.2f}, FPR {r.fpr_mean:.2f} ± {r.fpr_sd:.2f}"
    f" at k={r.k} photos ({r.members} members, {r.non_members} non-members, tau={r.tau}); "
    f"figures in results/figures/{r.model}/"
    for r in table.itertuples()
]
Path(snakemake.output.headline).write_text("\n".join(lines) + "\n")
print("\n".join(lines))
finish(snakemake)
