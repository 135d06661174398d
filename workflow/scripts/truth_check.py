from idia.checks import truth_check
from idia.smk import finish, log_to

log_to(snakemake.log[0])
truth_check(
    counts=snakemake.input.counts,
    truth=snakemake.input.truth,
    downloads=snakemake.input.downloads,
    identities=snakemake.input.identities,
    world=snakemake.input.summary,
    out=snakemake.output[0],
)
finish(snakemake)
