import json
from pathlib import Path

import pandas as pd

from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
counts = pd.read_parquet(snakemake.input.counts)
truth = pd.read_parquet(snakemake.input.truth)
downloads = json.loads(Path(snakemake.input.downloads).read_text())
acquired = pd.read_csv(snakemake.input.identities)
world = json.loads(Path(snakemake.input.summary).read_text())
both = truth.merge(counts, on="person_id", suffixes=("_truth", "_found"), validate="1:1")
if len(both) != len(truth):
    lost = sorted(set(truth["person_id"]) - set(counts["person_id"]))
    raise ValueError(f"{len(lost)} world identities were lost on the way to the counts: {lost}")
# Every study identity was acquired from the published lists; the people listed with too few
# photos on purpose were excluded, and nobody else.
excluded = set(acquired.loc[acquired["status"] == "excluded", "name"])
expected_excluded = set(world["counts"]["sparse_identities"])
# Named pairs whose image failed to download still carry their caption: the search counts
# captions, so found counts equal planted counts whatever the downloads did.
wrong = both[both["occurrences"] != both["count"]]
result = {
    "identities": len(both),
    "members_truth": int(both["member_truth"].sum()),
    "members_found": int(both["member_found"].sum()),
    "membership_agrees": int((both["member_truth"] == both["member_found"]).sum()),
    "counts_agree": int(len(both) - len(wrong)),
    "mismatches": wrong[["person_id", "name_truth", "occurrences", "count"]].to_dict("records"),
    "downloaded": downloads["successes"],
    "failed_urls": downloads["failed_to_download"],
    "identities_excluded": sorted(excluded),
    "identities_excluded_as_planned": excluded == expected_excluded,
}
write_json(snakemake.output[0], result)
print(
    f"caption search agrees with the world's truth for {result['counts_agree']}"
    f"/{result['identities']} identities; excluded at acquisition: {sorted(excluded)}"
)
if wrong.size:
    raise ValueError(f"caption search disagrees with the world's truth: {result['mismatches']}")
if excluded != expected_excluded:
    raise ValueError(
        f"acquisition excluded {sorted(excluded)}, the world planned {sorted(expected_excluded)}"
    )
finish(snakemake)
