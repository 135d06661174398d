from idia.smk import finish, log_to
from idia.summary import injection_summary

log_to(snakemake.log[0])
injection_summary(
    metrics=list(snakemake.input.metrics),
    utility=list(snakemake.input.utility),
    models=snakemake.params.models,
    k=snakemake.params.k,
    face_filter=snakemake.input.filter,
    classifier=snakemake.input.classifier,
    out=snakemake.output[0],
)
finish(snakemake)
