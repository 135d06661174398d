from pathlib import Path

from idia.smk import finish, log_to
from idia.sources import fetch, read_checksums

log_to(snakemake.log[0])
output = Path(snakemake.output[0])
pins = read_checksums(snakemake.input.checksums[0]) if snakemake.input.checksums else {}
record = fetch(
    snakemake.params.location,
    output,
    checksum=pins.get(output.name),
    timeout=snakemake.params.timeout,
    retries=snakemake.params.retries,
)
pinned = "checksum verified" if record["pinned"] else "no pinned checksum"
print(f"{record['location']} -> {output}: {record['size']:,} bytes, sha256 {record['sha256']} "
      f"({pinned})")  # fmt: skip
# the sha256 fetch() computed over every byte goes into the manifest: a large file (a LAION
# parquet) would otherwise get only the partial hash of its ends
finish(snakemake, hashes={output: {"bytes": record["size"], "sha256": record["sha256"]}})
