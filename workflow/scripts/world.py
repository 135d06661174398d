from pathlib import Path

from idia.smk import finish, log_to
from idia.world import build_world

log_to(snakemake.log[0])
world = dict(snakemake.params.world)
summary = build_world(
    Path(snakemake.output.summary).parent,
    seed=world["seed"],
    n_identities=world["n_identities"],
    n_members=world["n_members"],
    attack_photos=world["attack_photos"],
    occurrences=world["occurrences"],
    n_generic=world["n_generic"],
    image_size=world["image_size"],
    n_broken_urls=world["n_broken_urls"],
    n_shards=world["shards"],
    caption_templates=world["caption_templates"],
    url_list_identities=world["url_list_identities"],
    faults=world["faults"],
)
print(summary)
finish(snakemake)
