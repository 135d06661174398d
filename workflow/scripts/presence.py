from idia.faces import filter_present
from idia.smk import finish, log_to

log_to(snakemake.log[0])
filter_present(
    shards=list(snakemake.input.shards),
    identities=snakemake.input.identities,
    classifier=snakemake.input.classifier,
    truth=snakemake.input.truth or None,
    table=snakemake.output.table,
    summary=snakemake.output.summary,
    min_faces=snakemake.params.presence["min_faces"],
    min_confidence=snakemake.params.presence["min_confidence"],
)
finish(snakemake)
