"""The face filter's report: verdicts per identity, unverifiable persons, scores against a truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from idia.faces import filter_present, presence_report, too_few_faces

CLASSIFIER = {"arch": "resnet18", "size": 32, "n_test": 4, "test_accuracy": 0.75,
              "too_few_faces": {"p3": 1}}  # fmt: skip


def _faces() -> pd.DataFrame:
    # p1 on two images, p2 on one image twice and once unsure, one image without a face
    rows = [
        ("s0", "a", "ok", "p1", 0.9),
        ("s0", "b", "ok", "p1", 0.8),
        ("s1", "a", "ok", "p2", 0.9),
        ("s1", "a", "ok", "p2", 0.95),
        ("s1", "b", "ok", "p2", 0.2),
        ("s1", "c", "no_face", None, None),
        ("s1", "d", "unreadable", None, None),
    ]
    return pd.DataFrame(rows, columns=["shard", "key", "status", "predicted", "confidence"])


def _identities() -> pd.DataFrame:
    return pd.DataFrame({"person_id": ["p1", "p2", "p3"], "name": ["Ann A", "Bo B", "Cy C"]})


def test_report_counts_images_and_names_unverifiable_persons():
    table, summary = presence_report(
        _faces(), _identities(), CLASSIFIER, None, min_faces=2, min_confidence=0.5
    )
    assert table.set_index("person_id")["faces"].to_dict() == {"p1": 2, "p2": 1, "p3": 0}
    assert summary["present"] == ["p1"] and summary["unverifiable"] == ["p3"]
    assert summary["retrieved_images"] == 6 and summary["faces"] == 5
    assert summary["images_without_face"] == 1 and summary["images_unreadable"] == 1
    reason = table.set_index("person_id").loc["p3", "present_reason"]
    assert reason.startswith("Haar found a face on 1 of this person's photos")
    assert "precision" not in summary


@pytest.mark.parametrize(
    ("planted", "precision", "recall"),
    [(["p1", "p2"], 1.0, 0.5), (["p2"], 0.0, 0.0), ([], 0.0, None)],
)
def test_report_scores_the_filter_against_the_planted_truth(planted, precision, recall):
    truth = pd.DataFrame({"person_id": ["p1", "p2", "p3"]})
    truth["planted"] = truth["person_id"].isin(planted)
    _, summary = presence_report(
        _faces(), _identities(), CLASSIFIER, truth, min_faces=2, min_confidence=0.5
    )
    assert summary["planted"] == sorted(planted)
    assert summary["precision"] == precision and summary["recall"] == recall


def test_filter_present_writes_the_table_and_summary(tmp_path):
    _faces().iloc[:3].to_parquet(tmp_path / "0.parquet")
    _faces().iloc[3:].to_parquet(tmp_path / "1.parquet")
    identities = tmp_path / "identities.csv"
    _identities().assign(photo_dir=str(tmp_path)).to_csv(identities, index=False)
    (tmp_path / "report.json").write_text(json.dumps(CLASSIFIER))
    summary = filter_present(
        shards=[tmp_path / "0.parquet", tmp_path / "1.parquet"], identities=identities,
        classifier=tmp_path / "report.json", truth=None, table=tmp_path / "presence.csv",
        summary=tmp_path / "filter.json", min_faces=1, min_confidence=0.5,
    )  # fmt: skip
    assert json.loads((tmp_path / "filter.json").read_text()) == summary
    assert summary["present"] == ["p1", "p2"]
    written = pd.read_csv(tmp_path / "presence.csv")
    assert list(written["person_id"]) == ["p1", "p2", "p3"] and not written["verifiable"].iloc[2]


def test_too_few_faces_counts_usable_crops_per_person():
    table = pd.DataFrame(
        {"person_id": ["a", "a", "b", "b", "c"], "status": ["ok", "ok", "ok", "no_face", "ok"]}
    )
    few = too_few_faces(table, ["a", "b", "c", "d"])
    assert few.to_dict() == {"b": 1, "c": 1, "d": 0}
