from idia.figures import plot_by_level
from idia.smk import finish, log_to

log_to(snakemake.log[0])
plot_by_level(
    name=snakemake.wildcards.name,
    k=snakemake.params.k,
    tau=snakemake.params.tau,
    levels=snakemake.params.levels,
    scores=list(snakemake.input.scores),
    truths=list(snakemake.input.truth),
    rate=snakemake.output.rate,
    rate_pdf=snakemake.output.rate_pdf,
    heatmap=snakemake.output.heatmap,
    heatmap_pdf=snakemake.output.heatmap_pdf,
)
finish(snakemake)
