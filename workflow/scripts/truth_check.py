import json
from pathlib import Path

import pandas as pd

from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
counts = pd.read_parquet(snakemake.input.counts)
truth = pd.read_parquet(snakemake.input.truth)
downloads = json.loads(Path(snakemake.input.downloads).read_text())
both = truth.merge(counts, on="person_id", suffixes=("_truth", "_found"), validate="1:1")
if len(both) != len(truth):
    raise ValueError(f"{len(truth) - len(both)} world identities are missing from the counts")
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
}
write_json(snakemake.output[0], result)
print(
    f"caption search agrees with the world's truth for {result['counts_agree']}"
    f"/{result['identities']} identities"
)
if wrong.size:
    raise ValueError(f"caption search disagrees with the world's truth: {result['mismatches']}")
finish(snakemake)
