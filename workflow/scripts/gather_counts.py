import pandas as pd

from idia.search import gather_counts
from idia.smk import finish, log_to

log_to(snakemake.log[0])
names = pd.read_parquet(snakemake.input.identities, columns=["person_id", "name"])
counts = gather_counts(
    list(snakemake.input.hits),
    names,
    bin_edges=[float(e) for e in snakemake.params.bin_edges],
    bin_labels=snakemake.params.bin_labels,
)
counts.to_parquet(snakemake.output.parquet, index=False)
counts.to_csv(snakemake.output.csv, index=False)
print(
    f"{int(counts['member'].sum())} members, {int((~counts['member']).sum())} non-members; "
    + ", ".join(f"{b}: {n}" for b, n in counts.groupby("bin", sort=False).size().items())
)
finish(snakemake)
