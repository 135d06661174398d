import shutil
from pathlib import Path

import pandas as pd
import torch

from idia.faces import load_face_classifier
from idia.pairs import confirm_shards, pairs_report
from idia.smk import finish, log_to

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
classifier = load_face_classifier(snakemake.input.model)
images = Path(snakemake.output.images)
shutil.rmtree(images, ignore_errors=True)
images.mkdir(parents=True)
pairs, checked = confirm_shards(
    list(zip(snakemake.input.tars, snakemake.input.parquets)),
    classifier,
    snakemake.params.haar,
    snakemake.params.min_confidence,
    images,
)
checked.to_parquet(snakemake.output.checked, index=False)
pairs.to_parquet(snakemake.output.pairs, index=False)
candidates = pd.concat([pd.read_parquet(p) for p in snakemake.input.urls], ignore_index=True)
report = pairs_report(candidates, checked)
report.to_csv(snakemake.output.report, index=False)
print(f"pairs: {len(pairs)} of {len(checked)} downloaded LAION pairs confirmed by face for "
      f"{pairs['person_id'].nunique()} identities ({len(candidates)} rows found by the search); "
      + ", ".join(f"{n} {r}" for r, n in checked["reason"].value_counts().items()))  # fmt: skip
finish(snakemake)
