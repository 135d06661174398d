from idia.inject import inject_level
from idia.smk import finish, log_to

log_to(snakemake.log[0])
inject_level(
    cohort=snakemake.input.cohort,
    pairs=snakemake.input.pairs,
    base=list(snakemake.input.base),
    level=int(snakemake.wildcards.n),
    levels=snakemake.params.levels,
    seed=snakemake.params.seed,
    n_shards=snakemake.params.shards,
    shards=list(snakemake.output.shards),
    counts_out=snakemake.output.counts,
    truth_out=snakemake.output.truth,
    stats_out=snakemake.output.stats,
)
finish(snakemake)
