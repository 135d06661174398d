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
# Where the identity list gives the face's box (FaceScrub), the classifier learns from it, as the
# paper's did; the other photos (per-person URL lists) get the Haar cascade's box.
boxed = pd.read_parquet(snakemake.input.outcomes)
boxed = boxed[boxed["crop"] == "ok"].set_index("photo")
size = options.get("input_size", 64)
with_box = photos["path"].isin(boxed.index)
boxes = boxed.loc[photos.loc[with_box, "path"]]
listed, listed_table = box_crops(
    [(p, (r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1)) for p, r in zip(boxes.index, boxes.itertuples())],
    size=size,
)
found, found_table = face_crops(
    list(photos.loc[~with_box, "path"]), size=size, **snakemake.params.haar
)
found_table.loc[found_table["crop_index"] >= 0, "crop_index"] += len(listed)
crops = np.concatenate([listed, found])
table = photos.merge(pd.concat([listed_table, found_table], ignore_index=True), on="path",
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
    f"face crops: {int(with_box.sum())} from the list's boxes, {int((~with_box).sum())} photos "
    "through the Haar cascade"
)
print(
    f"face classifier {options['arch']}: held-out accuracy {report['test_accuracy']:.3f} on "
    f"{report['n_test']} crops of {len(report['classes'])} identities"
)
finish(snakemake)
