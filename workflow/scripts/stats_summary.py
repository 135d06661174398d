from idia.smk import finish, log_to
from idia.summary import stats_summary

log_to(snakemake.log[0])
stats_summary(summaries=list(snakemake.input.summaries), out=snakemake.output[0])
finish(snakemake)
