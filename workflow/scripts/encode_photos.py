import numpy as np
import torch

from idia.attack import encode_photos
from idia.backends import load_backend
from idia.identities import photo_table, read_identities
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
photos = photo_table(read_identities(snakemake.input.identities))
clip = load_backend(snakemake.params.model, device=snakemake.params.device)
emb = encode_photos(
    clip.model,
    clip.preprocess,
    list(photos["path"]),
    batch_size=snakemake.params.batch_size,
    device=clip.device,
)
np.save(snakemake.output.emb, emb)
photos.to_parquet(snakemake.output.photos, index=False)
print(f"{clip.name}: encoded {len(photos)} photos of {photos['person_id'].nunique()} identities")
finish(snakemake)
