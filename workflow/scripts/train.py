from pathlib import Path

from idia.smk import finish, log_to
from idia.trainer import train_model

log = log_to(snakemake.log[0])
train_model(
    model=snakemake.wildcards.model,
    arch=snakemake.params.arch,
    arch_dir=str(Path(snakemake.input.arch).parent) if snakemake.input.get("arch") else None,
    train=dict(snakemake.params.train),
    shards=list(snakemake.input.shards),
    stats=list(snakemake.input.stats),
    runs=snakemake.params.runs,
    weights=snakemake.output.weights,
    card=snakemake.output.card,
    threads=snakemake.threads,
    keep_log=log.keep,
)
finish(snakemake)
