from pathlib import Path

import pandas as pd

from idia.faces import detection_rate
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
identities = pd.read_parquet(snakemake.input.identities)
paths = sorted(p for d in identities["photo_dir"] for p in Path(d).glob("*.jpg"))
haar = snakemake.params.haar
result = detection_rate(
    paths,
    scale_factor=haar["scale_factor"],
    min_neighbors=haar["min_neighbors"],
    min_size=haar["min_size"],
)
result["parameters"] = dict(haar)
write_json(snakemake.output[0], result)
print(f"Haar cascade found a face in {result['n_detected']}/{result['n_images']} photos")
finish(snakemake)
