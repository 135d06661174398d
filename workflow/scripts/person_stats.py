import numpy as np
import pandas as pd

from idia.attack import true_name_per_person
from idia.smk import finish, log_to, write_json
from idia.stats import clopper_pearson, operating_points, summarize_model

log_to(snakemake.log[0])
options = snakemake.params.stats
pred = np.load(snakemake.input.predictions)
photos = pd.read_parquet(snakemake.input.photos)
candidates = pd.read_parquet(snakemake.input.candidates)
counts = pd.read_parquet(snakemake.input.counts).set_index("person_id")
persons = photos.drop_duplicates("person_index").sort_values("person_index")
true_of_person = true_name_per_person(pred["person_index"], pred["true_idx"])
# Decoys: the random filler names only. Other study identities' names may be known to the model,
# which would break the exchangeability the p-value rests on.
decoy_mask = candidates["person_id"].isna().to_numpy()
table, summary = summarize_model(
    pred["pred"],
    pred["rank"],
    pred["margin"],
    pred["person_index"],
    true_of_person,
    counts.loc[persons["person_id"], "member"].to_numpy(bool),
    np.load(snakemake.input.image),
    np.load(snakemake.input.text),
    decoy_mask,
    tau=snakemake.params.tau,
    seed=options["seed"],
    n_boot=options["n_boot"],
    q=options["q"],
    ci=options["ci"],
    fpr_claim=options["fpr_claim"],
)
meta = counts.loc[persons["person_id"], ["name", "count", "bin"]].reset_index()
table = pd.concat([meta, table.reset_index(drop=True)], axis=1)
table = table.sort_values(["combined_score", "count"], ascending=False)
table.to_csv(snakemake.output.persons, index=False, float_format="%.6g")
# Every tau as an operating point, with exact intervals: the rule's whole trade-off in one table.
n_templates = pred["pred"].shape[1]
points = operating_points(
    table["vote_score"].to_numpy(), table["is_member"].to_numpy(), range(1, n_templates + 1)
)
alpha = 1 - options["ci"]
for rate, hits, total in (("tpr", points["tp"], points["tp"] + points["fn"]),
                          ("fpr", points["fp"], points["fp"] + points["tn"])):  # fmt: skip
    lo, hi = clopper_pearson(hits.to_numpy(), total.to_numpy(), alpha)
    points[f"{rate}_lo"], points[f"{rate}_hi"] = lo, hi
points.to_csv(snakemake.output.taus, index=False, float_format="%.4f")
summary["model"] = snakemake.wildcards.model
summary["decoys"] = int(decoy_mask.sum())
write_json(snakemake.output.summary, summary)
vote = summary["vote"]
print(
    f"{snakemake.wildcards.model}: AUC {vote['auc']:.3f} [{vote['auc_lo']:.3f}, "
    f"{vote['auc_hi']:.3f}]; {summary['fpr_sentence']}"
)
finish(snakemake)
