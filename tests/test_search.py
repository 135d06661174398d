"""Caption search: literal word matching in DuckDB, the paper's substring mode, gathering, bins."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from idia import search
from idia.search import (
    gather_counts,
    normalize,
    occurrence_bins,
    read_hits,
    search_shard,
    tokenize,
    write_hits,
)

AWKWARD = [
    "Samuel L. Jackson",
    "Conan O'Brien",
    "Zoé Müller",
    "ZOÉ  MÜLLER\t\n",
    "A+B (Test) [x]* ^$ \\d. | ?",
    "ΟΔΟΣ Σίσυφος",
    "İstanbul DİYARBAKIR",
    "Straße ẞ",
    "Ångström Œuvre æ",
    "नमस्ते हिन्दी",
    "東京 タワー",
    "\u00a0nbsp\u2003em\u3000ideo\u2028ls\u0085nel\x1cfs ",
    "x_y 42 ½ ² ①",
    "co\u0301mbining e\u0301",
    "ﬁ ligature ＡＢＣ",
    "don't stop—now… «quoted»",
    "",
    "   ",
]


def _parquet(tmp_path, captions, name="shard-00000", **extra):
    path = tmp_path / f"{name}.parquet"
    cols = {"caption": pa.array(captions, pa.string())}
    cols.update(extra)
    pq.write_table(pa.table(cols), path)
    return path


def _names(*names):
    return pd.DataFrame({"person_id": [f"p{i}" for i in range(len(names))], "name": list(names)})


def _rows(tmp_path, captions, names, match="word"):
    """{name: [rows]} for the names found."""
    path = _parquet(tmp_path, captions)
    table = _names(*names)
    hits = search_shard(path, table, match=match)
    by_id = dict(zip(table["person_id"], table["name"]))
    out: dict[str, list[int]] = {}
    for pid, row in zip(hits["person_id"], hits["row"]):
        out.setdefault(by_id[pid], []).append(int(row))
    return out


@pytest.mark.parametrize("text", AWKWARD)
def test_python_tokenize_agrees_with_duckdb(text):
    # The captions' searched text: the tokens between single spaces, nothing else.
    con = duckdb.connect()
    (spaced,) = con.execute(f"SELECT {search._spaced_sql('$t')}", {"t": text}).fetchone()
    assert spaced.strip(" ") == " ".join(tokenize(text))
    assert "  " not in spaced


def test_tokens_split_punctuation():
    assert tokenize("Samuel L. Jackson") == ["samuel", "l", ".", "jackson"]
    assert tokenize("O'Brien") == ["o", "'", "brien"]
    assert tokenize("ZOÉ  Müller") == ["zoe", "muller"]
    assert normalize("  Zoé \t MÜLLER ") == "zoe muller"


def test_punctuation_must_match_literally(tmp_path):
    caps = ["Samuel L. Jackson won", "Samuel L Jackson", "samuel l.jackson", "SamuelL. Jackson"]
    assert _rows(tmp_path, caps, ["Samuel L. Jackson"]) == {"Samuel L. Jackson": [0, 2]}


def test_apostrophe_names(tmp_path):
    caps = ["Conan O'Brien show", "conan o'brien", "Conan OBrien", "O'Briens"]
    got = _rows(tmp_path, caps, ["O'Brien", "Conan O'Brien"])
    assert got == {"O'Brien": [0, 1], "Conan O'Brien": [0, 1]}


def test_accents_and_case_word_mode_only(tmp_path):
    caps = ["zoe muller here", "ZOÉ MÜLLER!", "Zoé Müller", "zoemuller"]
    assert _rows(tmp_path, caps, ["Zoé Müller"]) == {"Zoé Müller": [0, 1, 2]}
    assert _rows(tmp_path, caps, ["Zoé Müller"], match="paper") == {"Zoé Müller": [2]}


def test_name_inside_longer_word_does_not_match(tmp_path):
    caps = ["Annabel in Leeds", "Joann Leeds", "Ann Lee", "ann-lee", "ann_lee"]
    got = _rows(tmp_path, caps, ["Ann", "Lee", "Ann Lee"])
    assert got == {"Ann": [2, 3], "Lee": [2, 3], "Ann Lee": [2]}


def test_regex_metacharacters_are_literal(tmp_path):
    caps = ["A+B (Test) results", "AAB Test", "a+b (test)", "A+B Test", "x.y", "xzy"]
    # as SQL LIKE patterns, AA% and AA_ would match "AAB Test"
    got = _rows(tmp_path, caps, ["A+B (Test)", "x.y", "AA%", "AA_"])
    assert got == {"A+B (Test)": [0, 2], "x.y": [4]}
    paper = _rows(tmp_path, caps, ["A+B (Test)", "x.y", "AA%", "AA_"], match="paper")
    assert paper == {"A+B (Test)": [0], "x.y": [4]}


def test_overlapping_names_count_for_both_and_repeats_once(tmp_path):
    caps = ["Mary Ann Smith", "Ann Smith and Ann Smith again", "mary ann; mary ann"]
    got = _rows(tmp_path, caps, ["Mary Ann", "Ann Smith", "Ann"])
    assert got == {"Mary Ann": [0, 2], "Ann Smith": [0, 1], "Ann": [0, 1, 2]}


def test_names_of_many_lengths(tmp_path):
    caps = ["the quick brown fox jumps", "quick brown", "fox"]
    names = ["quick brown fox jumps", "fox", "the quick brown fox jumps", "brown fox jumps over"]
    got = _rows(tmp_path, caps, names)
    assert got == {
        "quick brown fox jumps": [0],
        "fox": [0, 2],
        "the quick brown fox jumps": [0],
    }


def test_paper_mode_is_case_sensitive_substring(tmp_path):
    caps = ["Joann Leeds", "ANN", "ann", "Mary Ann"]
    assert _rows(tmp_path, caps, ["ann"], match="paper") == {"ann": [0, 2]}
    assert _rows(tmp_path, caps, ["ann"]) == {"ann": [1, 2, 3]}


def test_rows_are_file_rows_and_nulls_are_counted(tmp_path):
    caps = [None, "Ann Lee", None, "nothing", "ann lee"] * 3
    path = _parquet(tmp_path, caps, name="part-7", url=pa.array(["u"] * len(caps)))
    names = _names("Ann Lee")
    for threads in (1, 2):
        hits = search_shard(path, names, threads=threads)
        assert hits["row"].tolist() == [1, 4, 6, 9, 11, 14]
        assert set(hits["shard"]) == {"part-7"}
        assert list(hits.columns) == ["person_id", "shard", "row"]
        assert hits.attrs["null_captions"] == 6
        assert hits.attrs["captions"] == 15


def test_null_count_without_parquet_statistics(tmp_path):
    path = tmp_path / "nostats.parquet"
    pq.write_table(pa.table({"caption": [None, "Ann", None]}), path, write_statistics=False)
    hits = search_shard(path, _names("ann"))
    assert hits["row"].tolist() == [1]
    assert (hits.attrs["captions"], hits.attrs["null_captions"]) == (3, 2)


def test_non_text_caption_column_is_rejected(tmp_path):
    path = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"caption": [1, 2]}), path)
    with pytest.raises(ValueError, match="ints.parquet.*not text"):
        search_shard(path, _names("Ann"))


def test_row_numbers_stable_across_row_groups(tmp_path):
    caps = [f"w{i} Ann Lee" if i % 7 == 0 else f"w{i}" for i in range(1000)]
    path = tmp_path / "rg.parquet"
    pq.write_table(pa.table({"caption": caps}), path, row_group_size=64)
    hits = search_shard(path, _names("Ann Lee"), threads=2)
    assert hits["row"].tolist() == list(range(0, 1000, 7))


def test_no_match_across_two_captions(tmp_path):
    # Captions lie back to back in each batch's buffer: "…Ann" + "Lee…" must not read as "AnnLee".
    caps = ["Mary Ann", "Lee was here", "AnnLee", "Mary", "Ann Lee"]
    assert _rows(tmp_path, caps, ["AnnLee"], match="paper") == {"AnnLee": [2]}
    assert _rows(tmp_path, caps, ["Ann Lee"]) == {"Ann Lee": [4]}


@pytest.mark.parametrize("match", ["word", "paper"])
def test_batches_and_threads_do_not_change_hits(tmp_path, match):
    rng = np.random.default_rng(0)
    words = ["Zoé", "Müller", "Ann", "Lee", "O'Brien", "東京", "the", "and", "—", "Ann-Lee"]
    caps = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(3000)]
    caps[17] = None
    path = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"caption": pa.array(caps, pa.string())}), path, row_group_size=500)
    names = _names("Zoé Müller", "Ann Lee", "Ann", "O'Brien", "東京", "Lee O'Brien")
    whole = search_shard(path, names, match=match, batch_rows=10_000)
    assert len(whole) > 1000
    for batch_rows, threads in ((1, 1), (7, 2), (333, 2)):
        got = search_shard(path, names, match=match, batch_rows=batch_rows, threads=threads)
        pd.testing.assert_frame_equal(got, whole)
    # The same pairs as a plain Python check of every caption.
    for pid, name in zip(names["person_id"], names["name"]):
        if match == "paper":
            want = [i for i, c in enumerate(caps) if c is not None and name in c]
        else:
            key = " " + " ".join(tokenize(name)) + " "
            want = [i for i, c in enumerate(caps) if c and key in " " + " ".join(tokenize(c)) + " "]
        assert whole.loc[whole["person_id"] == pid, "row"].tolist() == want, name


def test_missing_caption_column_names_file_and_columns(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["ann"], "url": ["u"]}), path)
    with pytest.raises(ValueError, match=r"x\.parquet.*'caption'.*\['text', 'url'\]"):
        search_shard(path, _names("Ann"))
    hits = search_shard(path, _names("Ann"), caption_col="text")
    assert hits["row"].tolist() == [0]


@pytest.mark.parametrize("match", ["word", "paper"])
def test_empty_names_are_rejected(tmp_path, match):
    path = _parquet(tmp_path, ["a"])
    bad = ["", "  "] if match == "word" else [""]
    with pytest.raises(ValueError, match="empty"):
        search_shard(path, _names("Ann", *bad), match=match)
    if match == "word":
        with pytest.raises(ValueError, match=r"p1"):
            search_shard(path, _names("Ann", " \u0301 "), match=match)


def test_duplicate_names_after_normalization_are_rejected(tmp_path):
    path = _parquet(tmp_path, ["a"])
    names = pd.DataFrame({"person_id": [10, 20, 30], "name": ["Zoé Müller", "Bob", "zoe  MULLER"]})
    with pytest.raises(ValueError, match=r"10.*30"):
        search_shard(path, names)
    # The paper's case-sensitive mode can tell them apart.
    assert search_shard(path, names, match="paper").empty


def test_write_and_read_hits_roundtrip_including_empty(tmp_path):
    path = _parquet(tmp_path, ["Ann Lee", "x"])
    names = _names("Ann Lee", "Nobody")
    hits = search_shard(path, names)
    write_hits(hits, tmp_path / "out" / "hits.parquet")
    back = read_hits(tmp_path / "out" / "hits.parquet")
    pd.testing.assert_frame_equal(back, hits[["person_id", "shard", "row"]])
    empty = search_shard(path, _names("Nobody"))
    write_hits(empty, tmp_path / "empty.parquet")
    schema = pq.read_schema(tmp_path / "empty.parquet")
    assert schema.field("person_id").type == pa.string()
    assert schema.field("row").type == pa.int64()


def test_gather_counts_over_shards_with_zero_count_persons(tmp_path):
    names = pd.DataFrame(
        {"person_id": [1, 2, 3, 4], "name": ["Ann Lee", "Bob Ray", "Cy Young", "Dee Dee"]}
    )
    shards = [
        ["Ann Lee", "ann lee and Bob Ray", "nothing"] + ["Bob Ray"] * 5,
        ["Ann Lee"] * 3 + [None, "Cy Young", "Bob Ray"],
    ]
    paths = []
    for i, caps in enumerate(shards):
        hits = search_shard(_parquet(tmp_path, caps, name=f"s{i}"), names)
        paths.append(tmp_path / f"hits{i}.parquet")
        write_hits(hits, paths[-1])
    out = gather_counts(paths, names, [1, 2, 5, math.inf])
    assert out["person_id"].tolist() == [1, 2, 3, 4]
    assert out["count"].tolist() == [5, 7, 1, 0]
    assert out["member"].tolist() == [True, True, True, False]
    assert out["bin"].tolist() == ["≥5", "≥5", "1", "non-member"]
    assert out["bin_index"].tolist() == [2, 2, 0, -1]
    # Counting the same shard twice does not double the counts.
    again = gather_counts(paths + paths[:1], names, [1, 2, 5, math.inf])
    assert again["count"].tolist() == [5, 7, 1, 0]


def test_gather_with_no_hits_at_all(tmp_path):
    names = _names("Ann", "Bob")
    hits = search_shard(_parquet(tmp_path, ["x"]), names)
    write_hits(hits, tmp_path / "h.parquet")
    out = gather_counts([tmp_path / "h.parquet"], names, [1, math.inf])
    assert out["count"].tolist() == [0, 0]
    assert out["bin"].tolist() == ["non-member", "non-member"]


def test_gather_rejects_counts_outside_bins_and_unknown_ids(tmp_path):
    names = _names("Ann")
    hits = pd.DataFrame({"person_id": ["p0"] * 3, "shard": ["s"] * 3, "row": [0, 1, 2]})
    write_hits(hits, tmp_path / "h.parquet")
    with pytest.raises(ValueError, match=r"count 3.*p0.*Ann"):
        gather_counts([tmp_path / "h.parquet"], names, [1, 2, 3])
    with pytest.raises(ValueError, match="not in the names table"):
        gather_counts([tmp_path / "h.parquet"], _names("Zed").assign(person_id=["q"]), [1, 9])


def test_occurrence_bins_labels_and_validation():
    assert occurrence_bins([1, 5, 10, 25, float("inf")]) == [
        (1, 5, "1–4"),
        (5, 10, "5–9"),
        (10, 25, "10–24"),
        (25, math.inf, "≥25"),
    ]
    assert occurrence_bins([1, 2, 3])[0][2] == "1"
    assert [b[2] for b in occurrence_bins([1, 10, 100], ["few", "many"])] == ["few", "many"]
    for bad in ([1], [5, 5], [10, 1], [0, 1], [1, float("nan")]):
        with pytest.raises(ValueError):
            occurrence_bins(bad)
    with pytest.raises(ValueError, match="labels"):
        occurrence_bins([1, 2, 3], ["one"])


def test_every_member_lands_in_exactly_one_bin(tmp_path):
    # The paper's bins forgot the 175 edge; ours are half-open and contiguous.
    edges = [1, 10, 25, 50, 75, 100, 125, 150, 175, 200, 300, 400, 500, math.inf]
    bins = occurrence_bins(edges)
    for count in [1, 9, 10, 174, 175, 176, 199, 200, 499, 500, 10**9]:
        inside = [label for lo, hi, label in bins if lo <= count < hi]
        assert len(inside) == 1, (count, inside)
    counts = [1, 9, 10, 174, 175, 200, 501]
    names = pd.DataFrame({"person_id": range(len(counts)), "name": [f"name{c}" for c in counts]})
    hits = pd.DataFrame(
        [(pid, "s", r) for pid, c in enumerate(counts) for r in range(c)],
        columns=["person_id", "shard", "row"],
    )
    write_hits(hits, tmp_path / "h.parquet")
    out = gather_counts([tmp_path / "h.parquet"], names, edges)
    assert out["count"].tolist() == counts
    assert out.loc[out["count"] == 175, "bin"].item() == "175–199"
    assert out.loc[out["count"] == 174, "bin"].item() == "150–174"
    assert (out["bin_index"] >= 0).all()


def test_shards_with_the_same_file_name_are_kept_apart(tmp_path):
    # img2dataset names every single-shard download 00000.parquet, each in its own folder.
    names = pd.DataFrame({"person_id": ["a"], "name": ["Ann Lee"]})
    paths = []
    for folder in ("part-00000", "part-00001"):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "00000.parquet"
        pd.DataFrame({"caption": ["Ann Lee smiles"]}).to_parquet(path)
        write_hits(search_shard(path, names, shard=folder), tmp_path / f"{folder}.hits.parquet")
        paths.append(tmp_path / f"{folder}.hits.parquet")
    counts = gather_counts(paths, names, bin_edges=[1, float("inf")])
    assert counts.loc[0, "count"] == 2


@pytest.mark.parametrize("match", ["word", "paper"])
def test_names_of_punctuation_or_one_letter_are_refused_naming_the_person(tmp_path, match):
    path = _parquet(tmp_path, ["A - !!! everywhere", "Ann Lee"])
    names = pd.DataFrame({"person_id": ["p1", "p2", "p3", "p4"], "name": ["!!!", "-", "A", "Al"]})
    with pytest.raises(ValueError, match="fewer than 2 letters") as err:
        search_shard(path, names, match=match)
    for part in ("person_id='p1' name='!!!' (0 letter(s))", "person_id='p2' name='-'",
                 "person_id='p3' name='A' (1 letter(s))"):  # fmt: skip
        assert part in str(err.value)
    assert "'p4'" not in str(err.value)
    assert len(search_shard(path, names.iloc[3:], match=match)) == 0


def test_a_caption_path_with_glob_characters_names_only_itself(tmp_path):
    _parquet(tmp_path, ["Ann Lee", "Ann Lee again"], name="q1")
    _parquet(tmp_path, ["Bob Ray"], name="qx")
    names = _names("Ann Lee", "Bob Ray")
    for literal in ("q[1]", "q*", "q?"):
        path = _parquet(tmp_path, ["nobody", "Bob Ray"], name=literal)
        hits = search_shard(path, names)
        assert hits.attrs["captions"] == 2, literal
        assert hits[["person_id", "row"]].values.tolist() == [["p1", 1]], literal


def test_an_empty_parquet_names_the_file(tmp_path):
    path = tmp_path / "part-00003.parquet"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"part-00003\.parquet is not a readable parquet file "
                       r"\(0 bytes.*delete it and rerun"):  # fmt: skip
        search_shard(path, _names("Ann Lee"))
    with pytest.raises(FileNotFoundError, match="caption file not found: .*nope.parquet"):
        search_shard(tmp_path / "nope.parquet", _names("Ann Lee"))


def test_a_parquet_without_rows_is_an_error_not_zero_counts(tmp_path):
    path = tmp_path / "part-00004.parquet"
    pq.write_table(pa.table({"caption": pa.array([], pa.string())}), path)
    with pytest.raises(ValueError, match=r"part-00004\.parquet holds no rows .*delete it and"):
        search_shard(path, _names("Ann Lee"))
