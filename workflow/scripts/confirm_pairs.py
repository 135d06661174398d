import shutil
from pathlib import Path

import pandas as pd
import torch

from idia.download import iter_shard
from idia.faces import load_face_classifier
from idia.pairs import confirm_pairs, pairs_report
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
classifier = load_face_classifier(snakemake.input.model)
images = Path(snakemake.output.images)
shutil.rmtree(images, ignore_errors=True)
images.mkdir(parents=True)
checked, kept = [], []
for tar, parquet in zip(snakemake.input.tars, snakemake.input.parquets):
    meta = pd.read_parquet(parquet)
    meta = meta[meta["status"] == "success"][["key", "person_id", "sample_id", "url", "caption"]]
    samples = [(key, parts.get("jpg", b"")) for key, parts in iter_shard(tar)]
    if not samples:
        continue
    result = confirm_pairs(
        samples, meta, classifier, snakemake.params.haar, snakemake.params.min_confidence
    )
    data = dict(samples)
    for row in result[result["confirmed"]].itertuples():
        path = images / row.person_id / f"{row.sample_id}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data[row.key])
        kept.append({"person_id": row.person_id, "path": str(path), "caption": row.caption,
                     "sample_id": row.sample_id, "url": row.url,
                     "confidence": row.confidence})  # fmt: skip
    checked.append(result.drop(columns=["key"]))
columns = ["person_id", "sample_id", "url", "caption", "faces", "confidence", "confirmed", "reason"]
checked = pd.concat(checked, ignore_index=True) if checked else pd.DataFrame(columns=columns)
checked.to_parquet(snakemake.output.checked, index=False)
pairs = pd.DataFrame(kept, columns=["person_id", "path", "caption", "sample_id", "url",
                                    "confidence"])  # fmt: skip
pairs.to_parquet(snakemake.output.pairs, index=False)
candidates = pd.concat([pd.read_parquet(p) for p in snakemake.input.urls], ignore_index=True)
report = pairs_report(candidates, checked)
report.to_csv(snakemake.output.report, index=False)
print(f"pairs: {len(pairs)} of {len(checked)} downloaded LAION pairs confirmed by face for "
      f"{pairs['person_id'].nunique()} identities ({len(candidates)} rows found by the search); "
      + ", ".join(f"{n} {r}" for r, n in checked["reason"].value_counts().items()))  # fmt: skip
finish(snakemake)
