from pathlib import Path

import numpy as np
import pandas as pd

from idia.retrieval import read_index, read_metadata, search, top_k_table
from idia.smk import finish, log_to

log_to(snakemake.log[0])
root = Path(snakemake.input.meta[0]).parent.parent
metadata = read_metadata(root, snakemake.params.parts)
photos = pd.read_parquet(snakemake.input.photos)
queries = np.load(snakemake.input.queries)
index = read_index(snakemake.input.index)
scores, ids = search(index, queries, snakemake.params.k, nprobe=snakemake.params.nprobe)
hits = top_k_table(scores, ids, metadata, list(photos["photo_index"]))
hits = hits.merge(
    photos[["photo_index", "person_id"]].rename(columns={"photo_index": "query_id"}),
    on="query_id",
    how="left",
)
hits.to_parquet(snakemake.output[0], index=False)
print(
    f"retrieved {len(hits)} look-alikes ({hits[['shard', 'key']].drop_duplicates().shape[0]} "
    f"distinct base images) for {len(photos)} photos of {photos['person_id'].nunique()} identities"
)
finish(snakemake)
