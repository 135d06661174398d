from idia.smk import finish, log_to
from idia.summary import attack_summary

log_to(snakemake.log[0])
attack_summary(
    models=snakemake.params.models,
    metrics=list(snakemake.input.metrics),
    tau=snakemake.params.tau,
    table=snakemake.output.table,
    headline=snakemake.output.headline,
)
finish(snakemake)
