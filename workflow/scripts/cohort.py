import pandas as pd

from idia.cohort import cohort_summary, select_cohort
from idia.identities import read_identities
from idia.smk import finish, log_to

log_to(snakemake.log[0])
options = snakemake.params.cohort
identities = read_identities(snakemake.input.identities)
if "gender" not in identities.columns:
    identities["gender"] = "unknown"
presence = pd.read_csv(snakemake.input.presence, dtype={"person_id": str})
candidates = identities[["person_id", "name", "gender"]].merge(
    presence[["person_id", "present", "verifiable", "present_reason"]], on="person_id", how="left"
)
confirmed = pd.read_csv(snakemake.input.pairs, dtype={"person_id": str})
candidates["pairs"] = candidates["person_id"].map(confirmed.set_index("person_id")["confirmed"])
candidates["pairs"] = candidates["pairs"].fillna(0).astype(int)
undecided = list(candidates.loc[candidates["present"].isna(), "person_id"])
if undecided:
    raise ValueError(f"identities without a presence decision: {undecided}; rerun `presence`")
# Whom the filter could not check is excluded like whom it found: membership must be controlled.
candidates["present"] = candidates["present"].astype(bool) | ~candidates["verifiable"].astype(bool)
cohort = select_cohort(
    candidates,
    options["members"],
    options["non_members"],
    options["seed"],
    min_pairs=snakemake.params.min_pairs,
)
cohort.to_csv(snakemake.output.table, index=False)
chosen = cohort.loc[cohort["status"].isin(["member", "non-member"]), "person_id"]
identities[identities["person_id"].isin(chosen)].to_parquet(
    snakemake.output.identities, index=False
)
print(cohort_summary(cohort))
finish(snakemake)
