from pathlib import Path

from idia.download import read_caption_tsv
from idia.smk import finish, log_to

log_to(snakemake.log[0])
table = read_caption_tsv(snakemake.input.tsv)
limit = snakemake.params.limit
rows = table.head(limit) if limit else table  # the file's first rows: no draw to seed
Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
rows.to_parquet(snakemake.output[0], index=False)
print(f"{snakemake.input.tsv}: {len(table):,} held-out caption-URL pairs, "
      f"{len(rows):,} to download")  # fmt: skip
finish(snakemake)
