import pandas as pd

from idia.identities import read_identities
from idia.names import candidate_pool, faker_name_lists, read_name_list
from idia.smk import finish, log_to

log_to(snakemake.log[0])
identities = read_identities(snakemake.input.identities)
lists = snakemake.params.lists
if lists:
    female, male, surnames = (
        read_name_list(lists[k]) for k in ("first_female", "first_male", "surnames")
    )
else:
    female, male, surnames = faker_name_lists("en_US")
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
print(f"candidate pool: {len(table)} names, {table['person_id'].notna().sum()} study identities")
finish(snakemake)
