from idia.figures import draw_figure
from idia.smk import finish, log_to

log_to(snakemake.log[0])
draw_figure(
    snakemake.params.figure,
    dict(snakemake.input.items()),
    model=snakemake.wildcards.model,
    k=snakemake.params.k,
    tau=snakemake.params.tau,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
finish(snakemake)
