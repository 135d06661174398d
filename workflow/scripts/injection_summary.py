import json
from pathlib import Path

import pandas as pd

from idia.smk import finish, log_to

log_to(snakemake.log[0])
k, models = snakemake.params.k, snakemake.params.models
rows = []
for metrics_path, utility_path in zip(snakemake.input.metrics, snakemake.input.utility):
    model = Path(metrics_path).parent.name
    metrics = pd.read_parquet(metrics_path)
    at_k = metrics[metrics["k"] == k][["tpr", "fpr", "accuracy"]].agg(["mean", "std"]).T
    utility = json.loads(Path(utility_path).read_text())
    rows.append(
        {
            "model": model,
            "arch": models[model]["arch"],
            "n": models[model]["n"],
            "tpr": at_k.loc["tpr", "mean"],
            "tpr_sd": at_k.loc["tpr", "std"],
            "fpr": at_k.loc["fpr", "mean"],
            "fpr_sd": at_k.loc["fpr", "std"],
            "accuracy": at_k.loc["accuracy", "mean"],
            **{
                key: utility[key]
                for key in ("zero_shot_top1", "zero_shot_top5", "i2t_rank1", "i2t_rank5")
            },
        }
    )
table = pd.DataFrame(rows).sort_values(["arch", "n"], ascending=[True, False])
face_filter = json.loads(Path(snakemake.input.filter).read_text())
classifier = json.loads(Path(snakemake.input.classifier).read_text())
table.to_csv(snakemake.output[0], index=False, float_format="%.4f")
print(table.to_string(index=False))
line = f"face classifier held-out accuracy {classifier['test_accuracy']:.3f}"
if face_filter.get("precision") is not None or face_filter.get("recall") is not None:
    line += (
        f"; presence filter precision {face_filter['precision']}, recall {face_filter['recall']}"
    )
print(line)
finish(snakemake)
