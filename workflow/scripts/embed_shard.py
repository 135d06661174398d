import itertools

import numpy as np
import pandas as pd
import torch

from idia.attack import encode_photos
from idia.download import iter_shard
from idia.models import load_clip
from idia.retrieval import write_embedding_part
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
shard, tar = snakemake.wildcards.shard, snakemake.input.tar
clip = load_clip(**snakemake.params.model, device=snakemake.params.device)
# A chunk of images at a time: a shard of any size fits in the job's memory.
samples = ((key, parts) for key, parts in iter_shard(tar) if "jpg" in parts)
keys, captions, embeddings = [], [], []
while chunk := list(itertools.islice(samples, snakemake.params.chunk)):
    keys += [key for key, _ in chunk]
    captions += [parts.get("txt", b"").decode("utf-8") for _, parts in chunk]
    emb = encode_photos(
        clip.model,
        clip.preprocess,
        [(f"{tar}:{key}.jpg", parts["jpg"]) for key, parts in chunk],
        batch_size=snakemake.params.batch_size,
        device=clip.device,
    )
    embeddings.append(np.asarray(emb, np.float32))
if not keys:
    raise ValueError(f"base shard {tar} holds no images")
metadata = pd.DataFrame({"key": keys, "shard": shard, "caption": captions})
root = snakemake.output.emb.rsplit("/img_emb/", 1)[0]
write_embedding_part(root, shard, np.concatenate(embeddings), metadata)
print(f"{shard}: embedded {len(keys)} images with {clip.name} ({len(embeddings)} chunk(s))")
finish(snakemake)
