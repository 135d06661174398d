from pathlib import Path

import pandas as pd

from idia.download import download_shard
from idia.smk import finish, log_to, write_json


def main() -> None:
    log_to(snakemake.log[0])
    columns = snakemake.params.columns
    wanted = [columns["url"], *([columns["caption"]] if columns.get("caption") else []),
              *columns.get("keep", [])]  # fmt: skip
    urls = pd.read_parquet(snakemake.input.urls, columns=wanted)
    options = snakemake.params.download
    stats = download_shard(
        urls,
        Path(snakemake.output.tar).parent,
        url_col=columns["url"],
        caption_col=columns.get("caption"),
        keep_columns=columns.get("keep", []),
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
