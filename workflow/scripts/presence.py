import json
from pathlib import Path

import pandas as pd

from idia.faces import presence
from idia.identities import read_identities
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
options = snakemake.params.presence
faces = pd.concat([pd.read_parquet(p) for p in snakemake.input.shards], ignore_index=True)
identities = read_identities(snakemake.input.identities)
named = faces[faces["predicted"].notna()].assign(image_key=lambda t: t["shard"] + "/" + t["key"])
table = presence(
    named,
    list(identities["person_id"]),
    min_faces=options["min_faces"],
    min_confidence=options["min_confidence"],
)
table = identities[["person_id", "name"]].merge(table, on="person_id")
classifier = json.loads(Path(snakemake.input.classifier).read_text())
too_few = classifier["too_few_faces"]
table["verifiable"] = ~table["person_id"].isin(too_few)
table.loc[~table["verifiable"], "present_reason"] = [
    f"Haar found a face on {too_few[pid]} of this person's photos (the face classifier needs 2): "
    "it cannot check whether the base corpus shows them"
    for pid in table.loc[~table["verifiable"], "person_id"]
]
summary = {
    "retrieved_images": int(faces[["shard", "key"]].drop_duplicates().shape[0]),
    "faces": int(faces["predicted"].notna().sum()),
    "images_without_face": int((faces["status"] == "no_face").sum()),
    "images_unreadable": int((faces["status"] == "unreadable").sum()),
    "present": sorted(table.loc[table["present"], "person_id"]),
    "unverifiable": sorted(table.loc[~table["verifiable"], "person_id"]),
    "classifier": {key: classifier[key] for key in ("arch", "size", "n_test", "test_accuracy")},
    "min_faces": options["min_faces"],
    "min_confidence": options["min_confidence"],
}
if snakemake.input.truth:
    truth = pd.read_parquet(snakemake.input.truth).set_index("person_id")
    table["planted"] = table["person_id"].map(truth["planted"]).astype(bool)
    tp = int((table["present"] & table["planted"]).sum())
    fp = int((table["present"] & ~table["planted"]).sum())
    fn = int((~table["present"] & table["planted"]).sum())
    summary |= {
        "planted": sorted(table.loc[table["planted"], "person_id"]),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }
table.to_csv(snakemake.output.table, index=False, float_format="%.4f")
write_json(snakemake.output.summary, summary)
line = f"face filter: {len(summary['present'])} identities present in the base corpus"
if "precision" in summary:
    line += (
        f"; against the planted truth: precision {summary['precision']}, recall "
        f"{summary['recall']} ({summary['true_positives']} of {len(summary['planted'])} "
        "planted identities found)"
    )
print(line)
finish(snakemake)
