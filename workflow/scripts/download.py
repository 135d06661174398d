from pathlib import Path

from idia.download import download_shard
from idia.smk import finish, log_to, write_json
from idia.sources import read_columns


def main() -> None:
    log_to(snakemake.log[0])
    # role -> column; "config_key": the config setting that names them (a user's file)
    columns = snakemake.params.columns
    keep = columns.get("keep", {})
    wanted = {"url": columns["url"]}
    if columns.get("caption"):
        wanted["caption"] = columns["caption"]
    wanted.update(keep)
    urls = read_columns(
        snakemake.input.urls, wanted, config_key=columns.get("config_key")
    ).to_pandas()
    options = snakemake.params.download
    stats = download_shard(
        urls,
        Path(snakemake.output.tar).parent,
        url_col=columns["url"],
        caption_col=columns.get("caption"),
        keep_columns=list(keep.values()),
        processes=options["processes"],
        threads=options["threads"],
        timeout=options["timeout"],
        retries=options["retries"],
        **snakemake.params.images,
    )
    stats["shard"] = snakemake.wildcards.shard
    write_json(snakemake.output.stats, stats)
    failures = ", ".join(f"{n} {reason}" for reason, n in stats["status_dict"].items()
                         if reason != "success")  # fmt: skip
    print(
        f"{snakemake.wildcards.shard}: {stats['successes']}/{stats['rows']} downloaded"
        + (f"; failed: {failures}" if failures else "")
    )


# img2dataset's workers are spawned processes that re-import this script: only the parent runs.
if __name__ == "__main__":
    main()
    finish(snakemake)
