import numpy as np
import pandas as pd
import torch
from idia.retrieval import write_embedding_part

from idia.attack import encode_photos
from idia.download import read_shard
from idia.models import load_clip
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
shard = snakemake.wildcards.shard
samples = [(key, parts) for key, parts in read_shard(snakemake.input.tar) if "jpg" in parts]
if not samples:
    raise ValueError(f"base shard {snakemake.input.tar} holds no images")
clip = load_clip(**snakemake.params.model, device=snakemake.params.device)
emb = encode_photos(
    clip.model,
    clip.preprocess,
    [(f"{snakemake.input.tar}:{key}.jpg", parts["jpg"]) for key, parts in samples],
    batch_size=snakemake.params.batch_size,
    device=clip.device,
)
metadata = pd.DataFrame(
    {
        "key": [key for key, _ in samples],
        "shard": shard,
        "caption": [parts.get("txt", b"").decode("utf-8") for _, parts in samples],
    }
)
root = snakemake.output.emb.rsplit("/img_emb/", 1)[0]
write_embedding_part(root, shard, np.asarray(emb, np.float32), metadata)
print(f"{shard}: embedded {len(samples)} images with {clip.name}")
finish(snakemake)
