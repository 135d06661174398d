from idia.smk import finish, log_to
from idia.stats import person_stats

log_to(snakemake.log[0])
options = snakemake.params.stats
person_stats(
    model=snakemake.wildcards.model,
    predictions=snakemake.input.predictions,
    photos=snakemake.input.photos,
    candidates=snakemake.input.candidates,
    counts=snakemake.input.counts,
    image=snakemake.input.image,
    text=snakemake.input.text,
    persons_out=snakemake.output.persons,
    taus_out=snakemake.output.taus,
    summary_out=snakemake.output.summary,
    tau=snakemake.params.tau,
    seed=options["seed"],
    n_boot=options["n_boot"],
    q=options["q"],
    ci=options["ci"],
    fpr_claim=options["fpr_claim"],
)
finish(snakemake)
