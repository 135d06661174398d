import shutil
from pathlib import Path

import pandas as pd

from idia.identities import assemble_identities
from idia.smk import finish, log_to

log_to(snakemake.log[0])
for folder in (snakemake.output.photos, snakemake.output.crops):
    shutil.rmtree(folder, ignore_errors=True)
    Path(folder).mkdir(parents=True)
identities, report, outcomes = assemble_identities(
    pd.read_parquet(snakemake.input.plan),
    list(zip(snakemake.input.tars, snakemake.input.parquets)),
    snakemake.output.photos,
    snakemake.output.crops,
    min_photos=snakemake.params.min_photos,
)
identities.to_parquet(snakemake.output.table, index=False)
report.to_csv(snakemake.output.report, index=False)
outcomes.to_parquet(snakemake.output.urls, index=False)
failed = outcomes[outcomes["outcome"] != "downloaded"]["outcome"].value_counts()
excluded = report[report["status"] == "excluded"]
print(
    f"identities: {len(identities)} kept of {len(report)} listed; {int(report['photos'].sum()):,} "
    f"photos and {int(report['crops'].sum()):,} face crops from {len(outcomes):,} URLs"
    + (f"; not used: {', '.join(f'{n} {r}' for r, n in failed.items())}" if len(failed) else "")
    + "".join(f"\n  excluded {r.name!r}: {r.reason}" for r in excluded.itertuples())
)
finish(snakemake)
