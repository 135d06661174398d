"""Tests of the single-person audit and the ``idia audit`` command, with a tiny real open_clip."""

from __future__ import annotations

import html
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from idia.attack import PAPER_TEMPLATES
from idia.audit import (
    NO_FACE,
    _place_name,
    audit_person,
    audit_provenance,
    check_name,
    collect_photos,
    person_slug,
    printable,
    render_html,
    run_audit,
    sha256_lines,
    summary_lines,
)
from idia.cli import main
from idia.models import load_clip
from idia.provenance import sha256_file
from idia.render import render_face, sample_identity

NAME = "Zoë O'Brien <x>"
FILLERS = [f"Person{chr(65 + i)} Filler{chr(65 + i)}" for i in range(12)]


@pytest.fixture(scope="module")
def clip(model_dir):
    return load_clip(model_dir=model_dir, device="cpu")


def _write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    params = sample_identity(np.random.default_rng(5))
    for j in range(4):
        _write(folder / f"face_{j}.jpg", render_face(params, np.random.default_rng([5, j]), 112))
    _write(folder / "blank.png", np.full((112, 112, 3), 127, np.uint8))
    (folder / "notes.txt").write_text("these are my holiday notes\n")
    (folder / "broken.jpg").write_bytes(b"")
    return folder


def _problems_by_file(problems: list[dict]) -> dict[str, str]:
    return {Path(p["path"]).name: p["problem"] for p in problems}


def test_collect_photos_reports_every_problem_and_keeps_faceless_photos(photo_dir):
    usable, problems = collect_photos(photo_dir)
    names = [p.name for p in usable]
    assert names == sorted(names)
    assert "notes.txt" not in names and "broken.jpg" not in names
    assert {"blank.png", "face_0.jpg", "face_1.jpg", "face_2.jpg", "face_3.jpg"} == set(names)
    found = _problems_by_file(problems)
    assert found["notes.txt"].startswith("not a readable image")
    assert "notes.txt" in found["notes.txt"]
    assert found["broken.jpg"].startswith("not a readable image") and "empty" in found["broken.jpg"]
    assert found["blank.png"].startswith(NO_FACE) and "still uses" in found["blank.png"]
    # rendered faces are mostly detected (the cascade finds >= 80 % of them)
    assert sum(n.startswith("face_") for n in found) <= 1


def test_collect_photos_require_face_drops_faceless(photo_dir):
    usable, problems = collect_photos(photo_dir, require_face=True)
    assert "blank.png" not in [p.name for p in usable]
    assert "left out" in _problems_by_file(problems)["blank.png"]


def test_collect_photos_without_usable_photo_names_folder_and_problems(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(ValueError, match="no usable photo") as err:
        collect_photos(tmp_path)
    assert str(tmp_path) in str(err.value) and "notes.txt" in str(err.value)
    with pytest.raises(ValueError, match="does not exist"):
        collect_photos(tmp_path / "missing")


def test_place_name_inserts_or_unifies_the_name():
    cands, idx, mask = _place_name("Zoë Smith", ["A B", "C D"], None)
    assert cands == ["A B", "C D", "Zoë Smith"] and idx == 2
    assert mask.tolist() == [True, True, False]
    # the same name up to case/accents is the name, not a decoy, and is not duplicated
    cands, idx, mask = _place_name("Zoë Smith", ["zoe smith", "A B", "ZOË SMITH"], None)
    assert cands == ["Zoë Smith", "A B"] and idx == 0 and mask.tolist() == [False, True]
    cands, idx, mask = _place_name("X Y", ["A B", "C D"], [False, True])
    assert mask.tolist() == [False, True, False]


def test_audit_person_on_a_tiny_model(photo_dir, clip):
    usable, _ = collect_photos(photo_dir)
    res = audit_person(usable, NAME, clip, candidates=FILLERS, templates=PAPER_TEMPLATES, tau=1)
    assert len(res["templates"]) == 21 == res["n_templates"]
    assert 0 <= res["vote_score"] <= 21
    assert res["vote_score"] == sum(r["correct"] for r in res["templates"])
    assert res["member"] == (res["vote_score"] >= 1)
    assert 0 < res["p_value"] <= 1
    assert res["n_candidates"] == len(FILLERS) + 1 and res["n_decoys"] == len(FILLERS)
    assert res["n_photos"] == len(usable) == 5
    assert 0 <= res["mean_rank"] <= len(FILLERS)
    for row in res["templates"]:
        assert row["prediction"] in [*FILLERS, NAME]
        assert 1 <= row["votes"] <= 5 and 0 <= row["true_votes"] <= row["votes"]
        # correct means the name is the unique plurality winner
        assert row["correct"] == (row["prediction"] == NAME and not row["tie"])
    # a stricter tau can only turn a member into a non-member
    strict = audit_person(usable, NAME, clip, candidates=FILLERS, tau=21)
    assert strict["member"] == (res["vote_score"] == 21)
    assert strict["vote_score"] == res["vote_score"]


def test_p_value_is_smallest_when_the_name_is_the_photos_best_match(photo_dir, clip):
    """With the decoys' own names as 'the person', the p-values are a permutation of ranks."""
    usable, _ = collect_photos(photo_dir)
    ps = [
        audit_person(usable, cand, clip, candidates=FILLERS[:6], templates=["a photo of {}"])[
            "p_value"
        ]
        for cand in FILLERS[:6]
    ]
    # p = (1 + #decoys at least as similar) / 6: exactly one candidate is the best match
    assert sorted(round(p * 6) for p in ps) == [1, 2, 3, 4, 5, 6]


def test_provenance_hashes_model_pool_and_templates(model_dir):
    weights = model_dir / "open_clip_model.safetensors"
    prov = audit_provenance("m", [weights], ["A B", "C D"], ["{}"], 11, tau=1)
    assert prov["model_files"][0]["sha256"] == sha256_file(weights)
    assert prov["candidates"]["sha256"] == sha256_lines(["A B", "C D"]) != sha256_lines(["A B"])
    assert prov["templates"]["n"] == 1 and prov["seeds"]["candidate_pool"] == 11
    assert set(prov["packages"]) >= {"idia", "torch", "open_clip_torch", "numpy"}
    assert prov["git_commit"] == "unknown" or len(prov["git_commit"]) == 40
    assert prov["python"].count(".") == 2 and prov["timestamp"].endswith("+00:00")


def test_run_audit_and_html_escape_everything(photo_dir, clip, model_dir, tmp_path):
    files = [model_dir / "open_clip_config.json", model_dir / "open_clip_model.safetensors"]
    result = run_audit(photo_dir, NAME, [(clip, files)], candidates=FILLERS, seed=None)
    assert result["n_usable"] == 5 and len(result["photos"]) == 7
    page = render_html(result, tmp_path / "a.html").read_text(encoding="utf-8")
    assert html.escape(NAME) in page and NAME not in page  # quote, accent and <x> escaped
    assert "&lt;x&gt;" in page and "O&#x27;Brien" in page
    assert sha256_file(files[1]) in page
    assert "<img" not in page and "base64" not in page
    assert "notes.txt" in page and NO_FACE in page
    verdict = "member" if result["models"][0]["member"] else "not a member"
    assert f'">{verdict}</div>' in page
    with_photos = render_html(result, tmp_path / "b.html", include_photos=True).read_text()
    assert with_photos.count("<img") == 5  # readable photos only


def test_cli_audit_end_to_end(photo_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "--photos",
            str(photo_dir),
            "--name",
            NAME,
            "--model-dir",
            str(model_dir),
            "--model-dir",
            str(model_dir),
            "--pool-size",
            "30",
            "--seed",
            "3",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    result = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert result["name"] == NAME and len(result["models"]) == 2
    first, second = result["models"]
    assert first["vote_score"] == second["vote_score"] and first["p_value"] == second["p_value"]
    assert first["n_candidates"] == 30 and first["provenance"]["seeds"]["candidate_pool"] == 3
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert html.escape(NAME) in page and "<img" not in page
    verdict = "not a member" if not first["member"] else "member"
    assert printed.count(f": {verdict} (vote score {first['vote_score']}/21") == 2
    assert "problem: notes.txt" in printed and "problem: blank.png: no face detected" in printed


def test_cli_candidates_file_and_include_photos(photo_dir, model_dir, tmp_path):
    cands = tmp_path / "cands.txt"
    cands.write_text("\n".join(FILLERS) + "\n")
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "--photos",
            str(photo_dir),
            "--name",
            "Ann Lee",
            "--model-dir",
            str(model_dir),
            "--candidates",
            str(cands),
            "--tau",
            "2",
            "--include-photos",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "audit.json").read_text())
    assert result["models"][0]["n_candidates"] == len(FILLERS) + 1
    assert result["models"][0]["tau"] == 2
    assert "cands.txt" in result["models"][0]["provenance"]["candidates"]["source"]
    assert (out / "audit.html").read_text().count("<img") == 5


def test_cli_missing_model_dir_exits_2_with_advice(photo_dir, tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code = main(["audit", "--photos", str(photo_dir), "--name", "A B", "--model-dir", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(missing) in err and "open_clip_config.json" in err and "Traceback" not in err


def test_cli_no_usable_photos_exits_2(tmp_path, model_dir, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing")
    code = main(["audit", "--photos", str(folder), "--name", "A B", "--model-dir", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "no usable photo" in err and "readme.txt" in err


# --------------------------------------------------------------------------------------------
# Input validated at the edge (issues 11 and 12)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0, -1, 22, 2.5, True])
def test_tau_outside_one_to_templates_is_rejected(photo_dir, clip, tau):
    usable, _ = collect_photos(photo_dir)
    with pytest.raises(ValueError, match=r"between 1 and the number of templates \(21\)"):
        audit_person(usable, NAME, clip, candidates=FILLERS, tau=tau)
    with pytest.raises(ValueError, match="between 1 and the number of templates"):
        run_audit(photo_dir, NAME, [clip], candidates=FILLERS, tau=tau)
    # with fewer templates the bound follows them
    with pytest.raises(ValueError, match=r"\(2\)"):
        audit_person(usable, NAME, clip, candidates=FILLERS, templates=["{}", "a {}"], tau=3)


@pytest.mark.parametrize("tau", ["0", "22"])
def test_cli_tau_outside_range_exits_2_before_loading(photo_dir, tmp_path, tau, capsys):
    missing = tmp_path / "no-model"  # never loaded: tau is checked first
    argv = ["audit", "--photos", str(photo_dir), "--name", "Ann Lee", "--tau", tau]
    assert main([*argv, "--model-dir", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--tau" in err and "between 1 and the number of templates (21)" in err


@pytest.mark.parametrize("name", ["", "   ", "!!!", "-", "A", "  a. ", "4 2"])
def test_names_without_two_letters_are_rejected(name, photo_dir, clip, capsys):
    with pytest.raises(ValueError, match="name"):
        check_name(name)
    usable, _ = collect_photos(photo_dir)
    with pytest.raises(ValueError, match="name"):
        audit_person(usable, name, clip, candidates=FILLERS)
    code = main(["audit", "--photos", str(photo_dir), "--name", name, "--model-dir", "x"])
    assert code == 2 and "--name" in capsys.readouterr().err


def test_real_names_pass_the_name_check():
    for name in ("Li Na", "Zoë O'Brien", "王菲", "Дмитрий Петров", "Ng"):
        assert check_name(f"  {name} ") == name


def test_person_slug_is_distinct_and_fits_a_file_name(tmp_path):
    names = ["王菲", "李娜", "Дмитрий Петров", "Анна Ли", "Anna Lee", "Anna-Lee", "Zoë O'Brien"]
    slugs = [person_slug(n) for n in names]
    assert len(set(slugs)) == len(names)  # before: the first four were all "person"
    assert slugs[0].startswith("王菲-") and slugs[2].startswith("дмитрии-петров-")
    assert slugs[6].startswith("zoe-o-brien-") and person_slug(" Zoë O'Brien ") == slugs[6]
    long = "Ünïcødé " * 60  # 600+ bytes in UTF-8
    slug = person_slug(long)
    assert len(slug.encode("utf-8")) <= 255 and slug != person_slug(long + "x")
    (tmp_path / slug).mkdir()  # the file system takes it
    assert person_slug("!!!").startswith("person-")


def test_cli_default_out_is_one_folder_per_person(photo_dir, model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("王菲", "李娜", "Ünïcødé " * 40):
        argv = ["audit", "--photos", str(photo_dir), "--name", name, "--pool-size", "8"]
        assert main([*argv, "--model-dir", str(model_dir)]) == 0
    folders = sorted((tmp_path / "audit").iterdir())
    assert len(folders) == 3
    names = {json.loads((f / "audit.json").read_text("utf-8"))["name"] for f in folders}
    assert names == {"王菲", "李娜", ("Ünïcødé " * 40).strip()}


def test_cli_refuses_to_overwrite_another_persons_audit(photo_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "shared"
    common = ["audit", "--photos", str(photo_dir), "--model-dir", str(model_dir), "--out", str(out)]
    common += ["--pool-size", "8"]
    assert main([*common, "--name", "Ann Lee"]) == 0
    assert main([*common, "--name", "Bob Ray"]) == 2
    err = capsys.readouterr().err
    assert "another person" in err and "Ann Lee" in err and "--overwrite" in err
    assert json.loads((out / "audit.json").read_text())["name"] == "Ann Lee"
    assert main([*common, "--name", "ann lee"]) == 0  # the same person again is fine
    assert main([*common, "--name", "Bob Ray", "--overwrite"]) == 0
    assert json.loads((out / "audit.json").read_text())["name"] == "Bob Ray"


def test_symlink_loops_and_dangling_links_are_listed_not_fatal(photo_dir, clip):
    (photo_dir / "loop.jpg").symlink_to(photo_dir / "loop.jpg")
    (photo_dir / "gone.jpg").symlink_to(photo_dir / "deleted-long-ago.jpg")
    (photo_dir / "ok.jpg").symlink_to(photo_dir / "face_0.jpg")
    usable, problems = collect_photos(photo_dir)
    found = _problems_by_file(problems)
    assert "symbolic link" in found["loop.jpg"] and "symbolic link" in found["gone.jpg"]
    assert "ok.jpg" in [p.name for p in usable]
    result = run_audit(photo_dir, NAME, [clip], candidates=FILLERS)
    assert result["n_usable"] == 6


def test_control_characters_in_file_names_never_reach_terminal_or_page(
    photo_dir, model_dir, tmp_path, capsys
):
    fake = "x.jpg\nAnn Lee: tiny: member (vote score 21)\x1b[2J\u202e"
    (photo_dir / fake).write_bytes(b"not an image")
    assert printable(fake) == "x.jpg\\nAnn Lee: tiny: member (vote score 21)\\x1b[2J\\u202e"
    out = tmp_path / "out"
    argv = ["audit", "--photos", str(photo_dir), "--name", "Ann Lee", "--pool-size", "8"]
    assert main([*argv, "--model-dir", str(model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\u202e" not in printed
    assert not any(line.startswith("Ann Lee: tiny") for line in printed.splitlines())
    assert "problem: x.jpg\\nAnn Lee" in printed
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert "\x1b" not in page and "\u202e" not in page and "x.jpg\\nAnn Lee" in page
    result = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert any(p["file"] == fake for p in result["photos"])  # the JSON keeps the real name
    lines = summary_lines(result)
    assert all("\n" not in line and "\x1b" not in line for line in lines)


def test_the_page_is_apart_from_the_audit_and_the_audit_offers_it():
    """idia.audit_page renders without the audit's logic (no import of idia.audit); the audit
    module still offers render_html, summary_lines and printable to its callers."""
    import idia.audit
    import idia.audit_page
    from idia.codedeps import imported_modules

    assert "audit" not in imported_modules(idia.audit_page.__file__)
    assert idia.audit.render_html is idia.audit_page.render_html
    assert idia.audit.summary_lines is idia.audit_page.summary_lines
