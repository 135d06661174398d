import json
from pathlib import Path

from idia.smk import finish, log_to
from idia.utility import format_utility_markdown, utility_table

log_to(snakemake.log[0])
rows = []
for path in snakemake.input.utility:
    result = json.loads(Path(path).read_text())
    rows.append({**result, **snakemake.params.models[result["model"]]})
table = utility_table(rows)
table.to_csv(snakemake.output.table, index=False, float_format="%.4f")
markdown = format_utility_markdown(table)
Path(snakemake.output.markdown).write_text(markdown + "\n")
print(markdown)
finish(snakemake)
