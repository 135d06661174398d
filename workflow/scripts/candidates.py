import pandas as pd

from idia.identities import read_identities
from idia.names import candidate_pool, read_census_surnames, read_ssa_first_names
from idia.smk import finish, log_to

log_to(snakemake.log[0])
identities = read_identities(snakemake.input.identities)
female, male = read_ssa_first_names(snakemake.input.first, snakemake.params.top)
surnames = read_census_surnames(snakemake.input.surnames, snakemake.params.top)
pool = candidate_pool(
    list(identities["name"]),
    snakemake.params.size,
    snakemake.params.seed,
    female,
    male,
    surnames,
)
person_of = dict(zip(identities["name"], identities["person_id"]))
table = pd.DataFrame({"candidate_index": range(len(pool)), "name": pool})
table["person_id"] = table["name"].map(person_of)
table.to_parquet(snakemake.output[0], index=False)
print(
    f"candidate pool: {len(table)} names, {table['person_id'].notna().sum()} study identities; "
    f"fillers from {len(female)} + {len(male)} first names and {len(surnames)} surnames"
)
finish(snakemake)
