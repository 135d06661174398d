from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.identities import photo_table, read_identities


def _table(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    for pid, _ in rows:
        folder = tmp_path / "photos" / pid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.jpg")
    table = pd.DataFrame(
        {
            "person_id": [p for p, _ in rows],
            "name": [n for _, n in rows],
            "photo_dir": [str(tmp_path / "photos" / p) for p, _ in rows],
        }
    )
    path = tmp_path / "identities.csv"
    table.to_csv(path, index=False)
    return path


def test_duplicate_names_up_to_case_and_accents_are_named(tmp_path):
    path = _table(tmp_path, [("a", "Zoé Müller"), ("b", "Ann Lee"), ("c", "ZOE MULLER")])
    with pytest.raises(ValueError, match=r"a='Zoé Müller'.*c='ZOE MULLER'"):
        read_identities(path)


def test_missing_column_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_identities(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"person_id": ["a"], "name": ["X Y"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="photo_dir"):
        read_identities(bad)


def test_photo_table_is_sorted_and_names_people_without_photos(tmp_path):
    path = _table(tmp_path, [("a", "Ann Lee"), ("b", "O'Brien Conan")])
    photos = photo_table(read_identities(path))
    assert list(photos["person_id"]) == ["a", "a", "b", "b"]
    assert list(photos["photo_index"]) == [0, 1, 2, 3]
    assert photos["path"].str.endswith(("0.jpg", "1.jpg")).all()
    for f in (tmp_path / "photos" / "b").iterdir():
        f.unlink()
    (tmp_path / "photos" / "b" / "notes.txt").write_text("not a photo")
    with pytest.raises(ValueError, match=r"no photos for: b \(\"O'Brien Conan\"\)"):
        photo_table(read_identities(path))


def test_empty_name_or_person_id_is_named_not_read_as_nan(tmp_path):
    path = _table(tmp_path, [("a", "Ann Lee"), ("b", "Bob Ray")])
    text = path.read_text().replace("\nb,Bob Ray,", "\nb,,").replace("\na,Ann Lee,", "\n,Ann Lee,")
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_identities(path)
    message = str(err.value)
    assert "row 1 (person_id='', name='Ann Lee'): empty person_id" in message
    assert "row 2 (person_id='b', name=''): empty name" in message
    assert "'nan'" not in message
    parquet = tmp_path / "identities.parquet"
    pd.DataFrame(
        {"person_id": ["a", None], "name": [None, "Bob Ray"], "photo_dir": ["x", "y"]}
    ).to_parquet(parquet)
    with pytest.raises(
        ValueError, match=r"row 2 \(person_id=None, name='Bob Ray'\): empty person_id"
    ):
        read_identities(parquet)


def test_names_that_look_like_missing_values_stay_names(tmp_path):
    path = _table(tmp_path, [("NA", "Nan Lee"), ("null", "Ann Null")])
    table = read_identities(path)
    assert table["person_id"].tolist() == ["NA", "null"]
    assert table["name"].tolist() == ["Nan Lee", "Ann Null"]


@pytest.mark.parametrize("name", ["!!!", "-", "A", " é "])
def test_names_of_punctuation_or_one_letter_are_refused_naming_the_person(tmp_path, name):
    path = _table(tmp_path, [("a", "Ann Lee"), ("b", name)])
    with pytest.raises(ValueError, match=rf"fewer than 2 letters.*person_id='b' name='{name}'"):
        read_identities(path)
