import json
from pathlib import Path

from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
shards = [json.loads(Path(p).read_text()) for p in snakemake.input.stats]
summary = {
    "shards": len(shards),
    "rows": sum(s["rows"] for s in shards),
    "successes": sum(s["successes"] for s in shards),
    "failed_to_download": sum(s["failed_to_download"] for s in shards),
    "failed_to_resize": sum(s["failed_to_resize"] for s in shards),
    "per_shard": shards,
}
write_json(snakemake.output[0], summary)
print(
    f"downloaded {summary['successes']}/{summary['rows']} images, "
    f"{summary['failed_to_download']} URLs failed"
)
finish(snakemake)
