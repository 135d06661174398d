from pathlib import Path

from idia.download import download_shard, serve_directory, url_table
from idia.smk import log_to, write_json

log_to(snakemake.log[0])
options = snakemake.params.download
out_dir = Path(snakemake.output.tar).parent
out_dir.mkdir(parents=True, exist_ok=True)
with serve_directory(snakemake.input.images) as base_url:
    urls = url_table(snakemake.input.urls, base_url)
    url_list = out_dir / "urls.parquet"
    urls.to_parquet(url_list, index=False)
    stats = download_shard(
        url_list,
        out_dir,
        processes=options["processes"],
        threads=options["threads"],
        timeout=options["timeout"],
        retries=options["retries"],
    )
url_list.unlink()
stats["shard"] = snakemake.wildcards.shard
write_json(snakemake.output.stats, stats)
print(
    f"{snakemake.wildcards.shard}: {stats['successes']}/{stats['rows']} downloaded, "
    f"{stats['failed_to_download']} failed"
)
