from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from idia.download import iter_shard
from idia.faces import face_crops, load_face_classifier, predict_faces
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
shard = snakemake.wildcards.shard
retrieved = pd.read_parquet(snakemake.input.retrieved)
mine = retrieved[retrieved["shard"] == shard]
queried = mine.groupby("key")["person_id"].agg(lambda ids: " ".join(sorted(set(ids))))
samples = {key: parts for key, parts in iter_shard(snakemake.input.tar) if key in queried.index}
lost = sorted(set(queried.index) - set(samples))
if lost:
    raise ValueError(
        f"retrieved keys {lost[:10]} are not in {snakemake.input.tar}; rebuild the index"
    )
classifier = load_face_classifier(snakemake.input.model)
crop_dir = Path(snakemake.output.crops)
crop_dir.mkdir(parents=True, exist_ok=True)
# the retrieved images are decoded straight from the shard's bytes, keyed by their sample key
crops, table = face_crops(
    [(key, samples[key].get("jpg", b"")) for key in sorted(samples)],
    size=classifier.size,
    largest_only=False,
    **snakemake.params.haar,
)
table = table.rename(columns={"path": "key"})
predicted = np.full(len(table), None, object)
confidence = np.full(len(table), np.nan)
has_crop = (table["crop_index"] >= 0).to_numpy()
if has_crop.any():
    index, prob = predict_faces(classifier, crops[table.loc[has_crop, "crop_index"].to_numpy()])
    predicted[has_crop] = np.asarray(classifier.classes, object)[index]
    confidence[has_crop] = prob
for row in table[has_crop].itertuples():
    crop = np.ascontiguousarray(crops[row.crop_index][..., ::-1])
    cv2.imwrite(str(crop_dir / f"{row.key}_{row.crop_index}.jpg"), crop)
table["predicted"] = predicted
table["confidence"] = confidence
table["shard"] = shard
table["queried_by"] = table["key"].map(queried)
table.to_parquet(snakemake.output.table, index=False)
print(
    f"{shard}: {len(samples)} retrieved images, {int(has_crop.sum())} faces, "
    f"{int((table['status'] == 'no_face').sum())} without a face, "
    f"{int((table['status'] == 'unreadable').sum())} unreadable"
)
finish(snakemake)
