import numpy as np
import pandas as pd
import torch

from idia.faces import box_crops, face_crops, save_face_classifier, train_face_classifier
from idia.identities import photo_table, read_identities
from idia.models import pick_device
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
# one core for the augmentation worker, the rest for the training step
torch.set_num_threads(max(1, snakemake.threads - 1))
options = snakemake.params.classifier
photos = photo_table(read_identities(snakemake.input.identities))
# The classifier sees faces the way the face filter will: cut around the Haar cascade's box.
# Where the cascade finds none but the identity list gives the face's box (FaceScrub's), the
# list's box is used, so that no listed face is lost.
size = options.get("input_size", 64)
found, found_table = face_crops(list(photos["path"]), size=size, **snakemake.params.haar)
boxed = pd.read_parquet(snakemake.input.outcomes)
boxed = boxed[boxed["crop"] == "ok"].set_index("photo")
missed = found_table.loc[found_table["status"] == "no_face", "path"]
boxes = boxed.loc[missed[missed.isin(boxed.index)]]
listed, listed_table = box_crops(
    [(p, (r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1)) for p, r in zip(boxes.index, boxes.itertuples())],
    size=size,
)
listed_table.loc[listed_table["crop_index"] >= 0, "crop_index"] += len(found)
crops = np.concatenate([found, listed])
found_table = found_table[~found_table["path"].isin(listed_table["path"])]
table = photos.merge(pd.concat([found_table, listed_table], ignore_index=True), on="path",
                     how="left")  # fmt: skip
table.to_parquet(snakemake.output.photos, index=False)
ok = table[table["status"] == "ok"]
# A person with fewer than 2 detected faces cannot be split 90/10 nor recognized: they are left
# out of the classifier, listed in the report, and the cohort excludes them with that reason.
faces_per_person = (
    ok.groupby("person_id").size().reindex(photos["person_id"].unique(), fill_value=0)
)
too_few = faces_per_person[faces_per_person < 2]
if len(too_few):
    print(f"{len(too_few)} identities have fewer than 2 detected faces and are left out: "
          + ", ".join(f"{pid} ({n})" for pid, n in too_few.items()))  # fmt: skip
ok = ok[~ok["person_id"].isin(too_few.index)]
for status, group in table[table["status"] != "ok"].groupby("status"):
    print(f"{len(group)} photos not used ({status}); each is listed in {snakemake.output.photos}")
classifier, report = train_face_classifier(
    crops[ok["crop_index"].to_numpy()],
    ok["person_id"].to_numpy(),
    arch=options["arch"],
    epochs=options["epochs"],
    batch_size=options.get("batch_size", 64),
    lr=options.get("lr", 1e-3),
    seed=options.get("seed", 0),
    test_fraction=options.get("test_fraction", 0.1),
    device="cuda" if options.get("gpus", 0) > 0 else pick_device("cpu"),
    workers=1 if snakemake.threads > 1 else 0,
)
save_face_classifier(classifier, snakemake.output.model)
report["photos"] = int(len(table))
report["photos_without_face"] = int((table["status"] == "no_face").sum())
report["photos_unreadable"] = int((table["status"] == "unreadable").sum())
report["too_few_faces"] = {pid: int(n) for pid, n in too_few.items()}
write_json(snakemake.output.report, report)
print(
    f"face crops: {int((found_table['status'] == 'ok').sum())} around the Haar cascade's box, "
    f"{len(listed)} around the list's box where the cascade found none"
)
print(
    f"face classifier {options['arch']}: held-out accuracy {report['test_accuracy']:.3f} on "
    f"{report['n_test']} crops of {len(report['classes'])} identities"
)
finish(snakemake)
