import pandas as pd

from idia.search import search_shard, write_hits
from idia.smk import finish, log_to

log_to(snakemake.log[0])
names = pd.read_parquet(snakemake.input.identities, columns=["person_id", "name"])
hits = search_shard(
    snakemake.input.captions,
    names,
    match=snakemake.params.match,
    caption_col=snakemake.params.column,
    threads=snakemake.threads,
    shard=snakemake.wildcards.shard,
)
write_hits(hits, snakemake.output[0])
print(
    f"{snakemake.wildcards.shard}: {len(hits)} name hits "
    f"for {hits['person_id'].nunique()} of {len(names)} identities"
)
finish(snakemake)
