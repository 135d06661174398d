"""Injection pairs from the caption search: the LAION rows named, read back by row number."""

import pandas as pd
import pytest

from idia.pairs import pair_urls, pairs_report

COLUMNS = {"url": "URL", "caption": "TEXT", "key": "SAMPLE_ID"}


def test_pair_urls_takes_the_hit_rows_of_the_metadata(tmp_path):
    meta = tmp_path / "part-00000.parquet"
    urls = [f"http://x.test/{i}.jpg" for i in range(4)]
    pd.DataFrame({"SAMPLE_ID": [10, 11, 12, 13], "URL": urls,
                  "TEXT": ["Ann Lee at the premiere", "a cat", "Ann Lee and Bo Ek", "Bo Ek"],
                  "NSFW": ["UNLIKELY"] * 4}).to_parquet(meta)  # fmt: skip
    hits = pd.DataFrame({"person_id": ["ann", "ann", "bo", "bo"], "row": [0, 2, 2, 3]})
    table = pair_urls(hits, meta, COLUMNS)
    assert table.to_dict("list") == {
        "person_id": ["ann", "ann", "bo", "bo"],
        "url": ["http://x.test/0.jpg", "http://x.test/2.jpg", "http://x.test/2.jpg",
                "http://x.test/3.jpg"],
        "caption": ["Ann Lee at the premiere", "Ann Lee and Bo Ek", "Ann Lee and Bo Ek", "Bo Ek"],
        "sample_id": ["10", "12", "12", "13"],
    }  # fmt: skip
    assert pair_urls(hits.iloc[:0], meta, COLUMNS).empty
    with pytest.raises(ValueError, match="row 9"):
        pair_urls(pd.DataFrame({"person_id": ["ann"], "row": [9]}), meta, COLUMNS)


def test_pairs_report_counts_every_stage_per_person():
    found = pd.DataFrame({"person_id": ["a", "a", "a", "b"]})
    checked = pd.DataFrame({"person_id": ["a", "a", "b"], "faces": [1, 0, 2],
                            "confirmed": [True, False, False]})  # fmt: skip
    report = pairs_report(found, checked).set_index("person_id")
    assert report.loc["a"].tolist() == [3, 2, 1, 1]
    assert report.loc["b"].tolist() == [1, 1, 1, 0]


def test_laion_metadata_without_the_configured_column_names_the_file_column_and_key(tmp_path):
    from idia.sources import SourceError

    meta = tmp_path / "part-00000.parquet"  # relaion-style lower-case names
    pd.DataFrame(
        {"key": ["10"], "url": ["http://x.test/0.jpg"], "caption": ["Ann Lee"]}
    ).to_parquet(meta)
    hits = pd.DataFrame({"person_id": ["ann"], "row": [0]})
    with pytest.raises(SourceError) as err:
        pair_urls(hits, meta, COLUMNS)
    message = str(err.value)
    assert message.startswith(f"{meta}: no column 'URL' (`sources.laion.columns.url`), ")
    assert "'TEXT' (`sources.laion.columns.caption`)" in message
    assert "'SAMPLE_ID' (`sources.laion.columns.key`)" in message
    assert "the file has columns ['key', 'url', 'caption']" in message
    assert "Set `sources.laion.columns` in the config" in message
    named = pair_urls(hits, meta, {"url": "url", "caption": "caption", "key": "key"})
    assert named.loc[0, "url"] == "http://x.test/0.jpg" and named.loc[0, "sample_id"] == "10"
