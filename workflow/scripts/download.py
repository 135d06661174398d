from pathlib import Path

from idia.download import download_shard, serve_directory, url_table
from idia.smk import finish, log_to, write_json


def main() -> None:
    log_to(snakemake.log[0])
    options = snakemake.params.download
    out_dir = Path(snakemake.output.tar).parent
    with serve_directory(snakemake.input.images) as base_url:
        stats = download_shard(
            url_table(snakemake.input.urls, base_url),
            out_dir,
            processes=options["processes"],
            threads=options["threads"],
            timeout=options["timeout"],
            retries=options["retries"],
        )
    stats["shard"] = snakemake.wildcards.shard
    write_json(snakemake.output.stats, stats)
    print(
        f"{snakemake.wildcards.shard}: {stats['successes']}/{stats['rows']} downloaded, "
        f"{stats['failed_to_download']} failed"
    )


# img2dataset's workers are spawned processes that re-import this script: only the parent runs.
if __name__ == "__main__":
    main()
    finish(snakemake)
