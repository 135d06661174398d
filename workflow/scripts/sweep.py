import numpy as np
import pandas as pd

from idia.attack import metrics_table, scores_long, summarize, sweep, true_name_per_person
from idia.smk import finish, log_to

log_to(snakemake.log[0])
pred = np.load(snakemake.input.predictions)
photos = pd.read_parquet(snakemake.input.photos)
counts = pd.read_parquet(snakemake.input.counts).set_index("person_id")
persons = photos.drop_duplicates("person_index").sort_values("person_index")
missing = sorted(set(persons["person_id"]) - set(counts.index))
if missing:
    raise ValueError(f"identities without caption counts: {missing}; rerun gather_counts")
true_of_person = true_name_per_person(pred["person_index"], pred["true_idx"])
ks = list(snakemake.params.ks)
scores = sweep(
    pred["pred"],
    pred["person_index"],
    true_of_person,
    ks,
    snakemake.params.draws,
    snakemake.params.seed,
    short=snakemake.params.short,
)
is_member = counts.loc[persons["person_id"], "member"].to_numpy(bool)
metrics = metrics_table(
    scores, is_member, ks, snakemake.params.tau, n_templates=pred["pred"].shape[-1]
)
summary = summarize(metrics)
scores_long(scores, list(persons["person_id"]), ks).to_parquet(snakemake.output.scores, index=False)
metrics.to_parquet(snakemake.output.metrics, index=False)
summary.to_csv(snakemake.output.summary, index=False)
last = summary[summary["k"] == ks[-1]].set_index("metric")["mean"]
print(f"k={ks[-1]}: TPR {last['tpr']:.3f}, FPR {last['fpr']:.3f}, accuracy {last['accuracy']:.3f}")
finish(snakemake)
