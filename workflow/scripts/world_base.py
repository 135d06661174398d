from pathlib import Path

from idia.smk import finish, log_to
from idia.world import build_base

log_to(snakemake.log[0])
world, base = snakemake.params.world, snakemake.params.base
summary = build_base(
    Path(snakemake.output.summary).parent,
    seed=world["seed"],
    n_identities=world["n_identities"],
    image_size=world["image_size"],
    caption_templates=world["caption_templates"],
    n_generic=base["n_generic"],
    n_extras=base["n_extras"],
    extra_photos=base["extra_photos"],
    n_planted=base["n_planted"],
    planted_photos=base["planted_photos"],
    pairs_per_person=base["pairs_per_person"],
    n_shards=base["shards"],
    eval_per_class=base["eval_per_class"],
    n_eval_pairs=base["n_eval_pairs"],
)
print(summary)
finish(snakemake)
