from pathlib import Path

from idia.download import read_caption_tsv, split_rows
from idia.smk import finish, log_to

log_to(snakemake.log[0])
table = read_caption_tsv(snakemake.input.tsv)
for part, path in zip(split_rows(table, len(snakemake.output)), snakemake.output):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    part.to_parquet(path, index=False)
print(f"{snakemake.input.tsv}: {len(table):,} caption-URL pairs in {len(snakemake.output)} shards")
finish(snakemake)
