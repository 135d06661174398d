import pandas as pd

from idia.reference import compare_counts, plot_comparison, read_reference
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
table, summary = compare_counts(
    pd.read_parquet(snakemake.input.counts), read_reference(snakemake.input.reference)
)
table.to_csv(snakemake.output.table, index=False, float_format="%.4f")
write_json(snakemake.output.summary, summary)
plot_comparison(
    table,
    snakemake.output.png,
    snakemake.output.pdf,
    f"our caption counts vs the reference ({summary['matched']} identities)",
)
print(
    f"counts vs reference: {summary['matched']} identities matched by name, membership agrees "
    f"for {summary['membership_agreement']}, Spearman {summary['spearman']}"
)
finish(snakemake)
