import json
import shutil
from pathlib import Path

import pandas as pd

from idia.heldout import heldout_pairs
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
images = Path(snakemake.output.images)
shutil.rmtree(images, ignore_errors=True)
pairs, report = heldout_pairs(
    snakemake.input.tar[0],
    pd.read_parquet(snakemake.input.parquet[0]),
    json.loads(Path(snakemake.input.stats[0]).read_text()),
    images,
)
pairs.to_parquet(snakemake.output.pairs, index=False)
write_json(snakemake.output.report, report)
failed = ", ".join(f"{n} {reason}" for reason, n in report["failed"].items())
print(f"held-out pairs: {report['pairs']} of {report['rows']} rows downloaded"
      + (f"; failed: {failed}" if failed else ""))  # fmt: skip
finish(snakemake)
