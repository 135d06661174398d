from pathlib import Path

import pandas as pd

from idia.inject import choose_pairs, inject, read_back_counts, verify_counts
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
level = int(snakemake.wildcards.n)
cohort = pd.read_csv(snakemake.input.cohort, dtype={"person_id": str})
persons = cohort[cohort["status"].isin(["member", "non-member"])].sort_values("person_id")
members = list(persons.loc[persons["status"] == "member", "person_id"])
pairs = pd.read_parquet(snakemake.input.pairs)
chosen = choose_pairs(pairs, members, snakemake.params.levels, snakemake.params.seed)
written = inject(
    snakemake.input.base,
    chosen,
    level,
    Path(snakemake.output.counts).parent,
    n_shards=snakemake.params.shards,
    seed=snakemake.params.seed,
)
# Read the shards back: the counts the figures use are the counts in the data.
counts = read_back_counts(snakemake.output.shards, persons)
expected = persons.set_index("person_id")["status"].eq("member") * level
verify_counts(counts, expected, level)
counts.to_parquet(snakemake.output.counts, index=False)
is_member = counts["person_id"].map(expected).gt(0)
truth = pd.DataFrame(
    {
        "person_id": counts["person_id"],
        "name": counts["name"],
        "count": counts["tagged"],
        "member": is_member,
        "bin": [f"N={level}" if m else "non-member" for m in is_member],
        "bin_index": [0 if m else -1 for m in is_member],
    }
)
truth.to_parquet(snakemake.output.truth, index=False)
stats = {
    "level": level,
    "successes": int(len(written)),
    "base_samples": int((written["source"] == "base").sum()),
    "injected_samples": int((written["source"] == "injected").sum()),
    "members": len(members),
    "non_members": int((~is_member).sum()),
    "verified": True,
    "read_back_samples": int(counts.attrs["samples"]),
}
write_json(snakemake.output.stats, stats)
print(
    f"N={level}: {stats['injected_samples']} named pairs of {len(members)} members shuffled into "
    f"{stats['base_samples']} base samples; read back: every member exactly {level}, "
    "every non-member 0"
)
finish(snakemake)
