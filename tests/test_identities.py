import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from idia.download import write_shard
from idia.facescrub import person_id
from idia.identities import assemble_identities, photo_table, read_identities


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


# --------------------------------------------------------------------------- assemble_identities


def _jpeg(width: int, height: int, value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _shards(tmp_path: Path, downloads: dict[int, tuple[str, str, bytes]]):
    """Two img2dataset-format shards (webdataset tar + parquet) for plan rows 0-3 and 4-7:
    ``downloads[row] = (status, error_message, bytes)``; keys restart in every shard."""
    shards = []
    for shard, rows in enumerate((range(0, 4), range(4, 8))):
        samples, table = [], []
        for i, row in enumerate(rows):
            status, error, data = downloads[row]
            key = f"{i:09d}"
            ok = status == "success"
            table.append({"key": key, "url": f"http://x.test/{row}.jpg", "row": row,
                          "status": status, "error_message": error,
                          "sha256": hashlib.sha256(data).hexdigest() if ok else None})  # fmt: skip
            if ok:
                samples.append((key, {"jpg": data, "json": b"{}"}))
        tar, parquet = tmp_path / f"{shard:05d}.tar", tmp_path / f"{shard:05d}.parquet"
        write_shard(tar, samples)
        pd.DataFrame(table).to_parquet(parquet, index=False)
        shards.append((tar, parquet))
    return shards


def test_assemble_identities_accounts_for_every_url_and_every_person(tmp_path):
    ann, bo = person_id("Ann Lee"), person_id("Bo Ekstrom")
    images = {row: _jpeg(40, 30, 20 * row) for row in range(8)}
    downloads = {
        0: ("success", None, images[0]),
        1: ("success", None, images[1]),
        2: ("success", None, images[2]),  # the list pins another sha256
        3: ("failed_to_download", "HTTP Error 404: Not Found", b""),
        4: ("success", None, images[4]),  # its box lies outside the 40x30 image
        5: ("success", None, images[5]),  # its box too, but Bo is excluded
        6: ("failed_to_download", "<urlopen error The read operation timed out>", b""),
        7: ("success", None, b"not a jpeg at all"),
    }
    inside, outside = (5, 4, 25, 24), (10, 10, 60, 28)
    boxes = {0: inside, 1: inside, 2: inside, 3: inside, 4: outside, 5: outside, 6: inside,
             7: inside}  # fmt: skip
    plan = pd.DataFrame(
        {
            "row": np.arange(8, dtype=np.int64),
            "person_id": [ann] * 5 + [bo] * 3,
            "name": ["Ann Lee"] * 5 + ["Bo Ekstrom"] * 3,
            "gender": ["female"] * 5 + ["male"] * 3,
            "source": ["facescrub_actresses.txt"] * 5 + ["facescrub_actors.txt"] * 3,
            "image_id": np.arange(8),
            "face_id": np.arange(8),
            "url": [f"http://x.test/{row}.jpg" for row in range(8)],
            "x1": [boxes[r][0] for r in range(8)],
            "y1": [boxes[r][1] for r in range(8)],
            "x2": [boxes[r][2] for r in range(8)],
            "y2": [boxes[r][3] for r in range(8)],
            "sha256": [
                ("0" * 64) if r == 2 else hashlib.sha256(downloads[r][2]).hexdigest()
                for r in range(8)
            ],
        }
    )
    photos, crops = tmp_path / "photos", tmp_path / "crops"
    identities, report, urls = assemble_identities(
        plan, _shards(tmp_path, downloads), photos, crops, min_photos=2
    )

    report = report.set_index("person_id")
    assert report.loc[ann, ["listed", "downloaded", "hash mismatch", "HTTP 404", "photos",
                            "crops", "bbox_outside"]].tolist() == [5, 3, 1, 1, 3, 2, 1]  # fmt: skip
    assert report.loc[ann, ["status", "reason"]].tolist() == ["kept", ""]
    assert report.loc[bo, ["listed", "downloaded", "timed out", "not an image", "photos",
                           "crops", "bbox_outside"]].tolist() == [3, 1, 1, 1, 1, 0, 1]  # fmt: skip
    assert report.loc[bo, "status"] == "excluded"  # reported, not dropped
    assert report.loc[bo, "reason"] == "only 1 usable photos, fewer than identities.min_photos=2"
    assert urls.set_index("row")["outcome"].to_dict() == {
        0: "downloaded", 1: "downloaded", 2: "hash mismatch", 3: "HTTP 404", 4: "downloaded",
        5: "downloaded", 6: "timed out", 7: "not an image",
    }  # fmt: skip
    outside_crops = urls.set_index("row").loc[[4, 5], "crop"].tolist()
    assert outside_crops == ["bbox outside the image (40x30)"] * 2

    assert identities.to_dict("list") == {
        "person_id": [ann], "name": ["Ann Lee"], "gender": ["female"],
        "source": ["facescrub_actresses.txt"], "photo_dir": [str(photos / ann)],
        "crop_dir": [str(crops / ann)], "n_photos": [3],
    }  # fmt: skip
    written = sorted((photos / ann).iterdir())
    assert [p.name for p in written] == ["0000000.jpg", "0000001.jpg", "0000004.jpg"]
    assert [p.read_bytes() for p in written] == [images[0], images[1], images[4]]
    cropped = sorted((crops / ann).iterdir())
    assert [p.name for p in cropped] == ["0000000.jpg", "0000001.jpg"]
    with Image.open(cropped[0]) as crop:
        assert crop.size == (inside[2] - inside[0], inside[3] - inside[1])
    assert sorted(p.name for p in photos.iterdir()) == [ann]  # the excluded person's photos
    assert not crops.joinpath(bo).exists()  # are not written
