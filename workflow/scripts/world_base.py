from pathlib import Path

from idia.smk import finish, log_to
from idia.world import build_base

log_to(snakemake.log[0])
# the config's keys are build_base's arguments (the schema admits no others)
summary = build_base(
    Path(snakemake.output.summary).parent, **snakemake.params.world, **snakemake.params.base
)
print(summary)
finish(snakemake)
