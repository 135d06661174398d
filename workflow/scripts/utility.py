import csv

import pandas as pd
import torch

from idia.models import load_clip
from idia.smk import finish, log_to, write_json
from idia.utility import ZERO_SHOT_TEMPLATES, evaluate_utility, read_image_folder

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
inputs = snakemake.input
given = set(inputs.keys())  # a Namedlist: `in` would test its values, not its names
classnames = None
if "classnames" in given:
    with open(inputs.classnames, newline="") as handle:
        classnames = {row[0]: row[1] for row in csv.reader(handle) if row}
paths, labels, classes = (
    read_image_folder(inputs.eval_dir, classnames) if "eval_dir" in given else (None,) * 3
)
pairs = pd.read_parquet(inputs.pairs) if "pairs" in given else None
clip = load_clip(**snakemake.params.model, device=snakemake.params.device)
result = evaluate_utility(
    clip,
    eval_paths=paths,
    eval_labels=labels,
    classnames=classes,
    pair_paths=None if pairs is None else list(pairs["path"]),
    pair_captions=None if pairs is None else list(pairs["caption"]),
    templates=snakemake.params.templates or ZERO_SHOT_TEMPLATES,
    batch_size=snakemake.params.batch_size,
)
result["model"] = snakemake.wildcards.model
write_json(snakemake.output[0], result)
print(
    f"{snakemake.wildcards.model}: zero-shot top-1 {result['zero_shot_top1']}, "
    f"image-to-text rank@1 {result['i2t_rank1']} ({'; '.join(result['notes']) or 'no notes'})"
)
finish(snakemake)
