from idia.smk import finish, log_to
from idia.utility import write_utility_table

log_to(snakemake.log[0])
write_utility_table(
    utility=list(snakemake.input.utility),
    models=snakemake.params.models,
    table_out=snakemake.output.table,
    markdown_out=snakemake.output.markdown,
)
finish(snakemake)
