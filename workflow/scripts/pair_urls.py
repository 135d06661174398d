from idia.pairs import pair_urls
from idia.search import read_hits
from idia.smk import finish, log_to

log_to(snakemake.log[0])
table = pair_urls(
    read_hits(snakemake.input.hits), snakemake.input.metadata, snakemake.params.columns
)
table.to_parquet(snakemake.output[0], index=False)
print(f"{snakemake.wildcards.shard}: {len(table)} LAION rows name {table['person_id'].nunique()} "
      "identities: their images are downloaded as candidate pairs")  # fmt: skip
finish(snakemake)
