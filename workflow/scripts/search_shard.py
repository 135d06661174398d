import pandas as pd

from idia.search import search_shard
from idia.smk import log_to

log_to(snakemake.log[0])
names = pd.read_parquet(snakemake.input.identities, columns=["person_id", "name"])
hits = search_shard(
    snakemake.input.captions,
    names,
    match=snakemake.params.match,
    caption_col=snakemake.params.column,
    threads=snakemake.threads,
)
hits.to_parquet(snakemake.output[0], index=False)
print(f"{snakemake.wildcards.shard}: {len(hits)} name hits "
      f"for {hits['person_id'].nunique()} of {len(names)} identities")
