import time

import pandas as pd

from idia.search import search_shard, write_hits
from idia.smk import finish, log_to

log_to(snakemake.log[0])
names = pd.read_parquet(snakemake.input.identities, columns=["person_id", "name"])
start = time.perf_counter()
hits = search_shard(
    snakemake.input.captions,
    names,
    match=snakemake.params.match,
    caption_col=snakemake.params.column,
    threads=snakemake.threads,
    shard=snakemake.wildcards.shard,
)
write_hits(hits, snakemake.output[0])
seconds = time.perf_counter() - start
captions = hits.attrs["captions"]
print(
    f"{snakemake.wildcards.shard}: {len(hits)} name hits for {hits['person_id'].nunique()} of "
    f"{len(names)} identities in {captions:,} captions ({seconds:.1f} s, "
    f"{captions / max(seconds, 1e-9):,.0f} captions/s on {snakemake.threads} thread(s))"
)
finish(snakemake)
