from pathlib import Path

from idia.download import split_rows
from idia.facescrub import plan_downloads
from idia.smk import finish, log_to

log_to(snakemake.log[0])
plan, excluded = plan_downloads(list(snakemake.input.lists), list(snakemake.input.folders))
if plan.empty:
    raise ValueError(
        f"no usable line in the identity lists {list(snakemake.input.lists)} and folders "
        f"{list(snakemake.input.folders)}; see {snakemake.output.excluded}"
    )
plan.to_parquet(snakemake.output.plan, index=False)
excluded.to_csv(snakemake.output.excluded, index=False)
for part, path in zip(split_rows(plan, len(snakemake.output.urls)), snakemake.output.urls):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    part[["url", "row"]].to_parquet(path, index=False)
print(f"identity lists: {len(plan):,} URLs of {plan['person_id'].nunique()} people planned in "
      f"{len(snakemake.output.urls)} shard(s); {len(excluded)} line(s) excluded"
      + "".join(f"\n  excluded {r.file}:{r.line} ({r.name}): {r.reason}"
                for r in excluded.itertuples()))  # fmt: skip
finish(snakemake)
