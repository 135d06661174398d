import numpy as np
import pandas as pd
import torch

from idia.attack import predict
from idia.models import pick_device
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
text = np.load(snakemake.input.text, mmap_mode="r")  # read chunk by chunk by predict
image = np.load(snakemake.input.image)
photos = pd.read_parquet(snakemake.input.photos)
candidates = pd.read_parquet(snakemake.input.candidates)
index_of = dict(zip(candidates["person_id"].dropna(), candidates["candidate_index"].dropna()))
missing = sorted(set(photos["person_id"]) - set(index_of))
if missing:
    raise ValueError(f"identities missing from the candidate pool: {missing}; rerun candidate_pool")
true_idx = photos["person_id"].map(index_of).to_numpy(np.int64)
out = predict(
    image,
    text,
    true_idx,
    chunk_elems=snakemake.params.chunk_elems,
    device=pick_device(snakemake.params.device),
)
np.savez_compressed(
    snakemake.output[0],
    pred=out["pred"],
    rank=out["rank"],
    margin=out["margin"],
    true_idx=true_idx,
    person_index=photos["person_index"].to_numpy(np.int64),
)
top1 = float((out["rank"] == 0).mean())
print(
    f"predictions for {len(photos)} photos x {text.shape[0]} templates; "
    f"true name ranked first in {top1:.1%} of (photo, template) pairs"
)
finish(snakemake)
