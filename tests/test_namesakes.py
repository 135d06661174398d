"""Tests of the namesake null: the generator, the test's behaviour and its place in the audit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from idia.audit import render_html, run_audit, summary_lines
from idia.backends import load_backend
from idia.cli import main
from idia.names import candidate_pool, faker_name_lists, name_key
from idia.namesakes import KINDS, namesake_pool, namesake_scores, one_letter_edits
from idia.render import render_face, sample_identity
from idia.stats import decoy_pvalues

LISTS = faker_name_lists("en_US")


def _one_edit_apart(a: str, b: str) -> bool:
    """Optimal string alignment distance 1 (deletion, insertion, substitution, transposition)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def test_pool_is_seeded_distinct_and_holds_every_kind():
    name = "Jordan Piggott"
    names, kinds = namesake_pool(name, 30, 4, *LISTS)
    assert (names, kinds) == namesake_pool(name, 30, 4, *LISTS)
    assert names != namesake_pool(name, 30, 5, *LISTS)[0]
    assert len(names) == len(kinds) == 30
    keys = [name_key(n) for n in names]
    assert len(set(keys)) == 30 and name_key(name) not in keys
    assert {k: kinds.count(k) for k in KINDS} == {"first": 10, "surname": 10, "edit": 10}
    for cand, kind in zip(names, kinds):
        first, last = cand.split()
        if kind == "first":
            assert first == "Jordan" and name_key(last) != "piggott"
        elif kind == "surname":
            assert last == "Piggott" and name_key(first) != "jordan"
        else:
            changed = [(a, b) for a, b in zip(name.split(), cand.split()) if a != b]
            assert len(changed) == 1 and _one_edit_apart(
                name_key(changed[0][0]), changed[0][1].lower()
            )


def test_edits_cover_each_operation_and_look_like_names():
    edits = dict(one_letter_edits("Jordan Piggott"))
    ops = set(edits.values())
    assert ops == {"deletion", "substitution", "transposition", "doubling"}
    assert "Jordan Pigott" in edits and "Jordan Piggot" in edits  # the example
    assert "Jorrdan Piggott" in edits and "Jodran Piggott" in edits
    for cand in edits:
        assert all(tok[0].isupper() and tok[1:].islower() for tok in cand.split()), cand
        assert "ggg" not in cand.lower() and "JJ" not in cand
    # the edit namesakes take turns of operation: ten of them hold all four
    names, kinds = namesake_pool("Jordan Piggott", 30, 0, *LISTS)
    assert {edits[n] for n, k in zip(names, kinds) if k == "edit"} == set(ops)


def test_accents_never_give_the_same_name_back():
    name = "Zoë Müller"
    edits = [e for e, _ in one_letter_edits(name)]
    assert "Zoe Müller" not in edits and "Zoë Muller" not in edits  # accent-only "edits"
    names, _ = namesake_pool(name, 40, 1, *LISTS)
    assert name_key(name) not in {name_key(n) for n in names}
    assert len({name_key(n) for n in names}) == 40
    assert "Zoe Muller" not in names


def test_hyphenated_surname_is_one_surname_and_keeps_its_hyphen():
    names, kinds = namesake_pool("Anna Lee-Smith", 30, 2, *LISTS)
    for cand, kind in zip(names, kinds):
        if kind == "surname":
            assert cand.endswith(" Lee-Smith")
        if kind == "first":
            assert cand.startswith("Anna ") and "Lee-Smith" not in cand
        if kind == "edit":
            surname = cand.split()[1]
            parts = surname.split("-")
            assert len(parts) == 2 and all(any(c.isalpha() for c in p) for p in parts)


def test_single_token_name_gets_only_edits_and_too_many_is_an_error():
    names, kinds = namesake_pool("Madonna", 12, 0, *LISTS)
    assert set(kinds) == {"edit"} and len(set(map(name_key, names))) == 12
    assert all(_one_edit_apart("madonna", name_key(n)) for n in names)
    with pytest.raises(ValueError, match="'Bo'.*fewer namesakes"):
        namesake_pool("Bo", 200, 0, *LISTS)
    few, _ = namesake_pool(
        "王菲", 50, 0, *LISTS, allow_fewer=True
    )  # other scripts: no substitution
    assert sorted(few) == sorted(["菲王", "王菲菲"])
    with pytest.raises(ValueError, match=">= 1"):
        namesake_pool("Jordan Piggott", 0, 0, *LISTS)


def test_other_first_names_are_of_the_first_names_sex():
    female, male, _ = LISTS
    only_female = next(n for n in female if n not in male and n.isalpha())
    names, kinds = namesake_pool(f"{only_female} Piggott", 30, 0, *LISTS)
    firsts = {n.split()[0] for n, k in zip(names, kinds) if k == "surname"}
    assert firsts and firsts <= set(female)


# --------------------------------------------------------------------------------------------
# The test's behaviour on models built to know the surname only, or the whole name
# --------------------------------------------------------------------------------------------

DIM, N_TEMPLATES, N_PHOTOS, N_DECOYS = 64, 3, 5, 50


def _vec(*parts: str) -> np.ndarray:
    """A fixed random unit vector per string (a token, or a whole name)."""
    seed = int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")
    v = np.random.default_rng(seed).normal(size=DIM)
    return v / np.linalg.norm(v)


def _text_emb(names: list[str], kind: str) -> np.ndarray:
    """``[T, C, D]`` text embeddings of a synthetic model.

    ``surname``: a name's embedding is its surname's vector plus a little of its own (the model
    ties a face to the family name); ``name``: its own vector (the model knows full names).
    """
    rows = []
    for t in range(N_TEMPLATES):
        embs = []
        for n in names:
            own = _vec("name", name_key(n), str(t))
            v = _vec("surname", name_key(n.split()[-1])) + 0.3 * own if kind == "surname" else own
            embs.append(v / np.linalg.norm(v))
        rows.append(embs)
    return np.asarray(rows, np.float32)


def _photos(name: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Photo embeddings close to what the model ties the person's face to."""
    anchor = _vec("surname", name_key(name.split()[-1])) if kind == "surname" else None
    if anchor is None:
        anchor = np.mean([_vec("name", name_key(name), str(t)) for t in range(N_TEMPLATES)], 0)
    x = anchor + 0.15 * rng.normal(size=(N_PHOTOS, DIM)) / np.sqrt(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _both_tests(name: str, kind: str, seed: int) -> tuple[float, dict]:
    rng = np.random.default_rng([seed, 1])
    photos = _photos(name, kind, rng)
    # random decoys as the audit draws them, the name last
    pool = candidate_pool([name], N_DECOYS + 1, seed, *LISTS)[1:] + [name]
    decoys = np.ones(len(pool), bool)
    decoys[-1] = False
    p_decoy = float(
        decoy_pvalues(
            photos,
            _text_emb(pool, kind),
            np.zeros(N_PHOTOS, np.int64),
            np.array([len(pool) - 1]),
            decoys,
        )[0]
    )
    names, kinds = namesake_pool(name, N_DECOYS, seed, *LISTS)
    return p_decoy, namesake_scores(photos, _text_emb([*names, name], kind), kinds)


def _persons(n: int) -> list[str]:
    female, male, last = LISTS
    rng = np.random.default_rng(99)
    firsts = [n for n in female + male if n.isalpha()]
    lasts = [n for n in last if n.isalpha()]
    return [
        f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}" for _ in range(n)
    ]


def test_surname_only_model_passes_random_decoys_but_fails_namesakes():
    persons = _persons(20)
    results = [_both_tests(name, "surname", i) for i, name in enumerate(persons)]
    p_decoy = np.array([r[0] for r in results])
    p_name = np.array([r[1]["p_value"] for r in results])
    # against random names the surname alone wins: every person at the smallest p-value
    assert np.all(p_decoy <= 1 / (N_DECOYS + 1) + 1e-12)
    # against namesakes the true name is one of many with its surname: not significant
    assert (p_name <= 0.05).mean() <= 0.2
    assert np.median(p_name) > 5 / (N_DECOYS + 1)  # random decoys: all at 1 / 51
    # what the model picks: names with the right surname, never one with only the first name
    shares = [r[1]["pick_shares"] for r in results]
    assert all(s["first"] == 0.0 for s in shares)
    assert np.mean([s["surname"] for s in shares]) > 0.4
    assert np.mean([s["true"] for s in shares]) < 0.2


def test_model_that_knows_the_name_passes_both_tests():
    for i, name in enumerate(_persons(5)):
        p_decoy, ns = _both_tests(name, "name", i)
        assert p_decoy == pytest.approx(1 / (N_DECOYS + 1))
        assert ns["p_value"] == pytest.approx(1 / (N_DECOYS + 1))
        assert ns["top1_rate"] == 1.0 and ns["vote_score"] == N_TEMPLATES
        assert ns["pick_shares"]["true"] == 1.0 and ns["n_templates"] == N_TEMPLATES


def test_scores_reject_mismatched_kinds():
    emb = np.ones((2, 4, 8), np.float32) / np.sqrt(8)
    photos = np.ones((1, 8), np.float32) / np.sqrt(8)
    with pytest.raises(ValueError, match="true name last"):
        namesake_scores(photos, emb, ["first", "edit"])
    with pytest.raises(ValueError, match="unknown namesake kind"):
        namesake_scores(photos, emb, ["first", "edit", "cousin"])


# --------------------------------------------------------------------------------------------
# In the audit, with a tiny real open_clip model
# --------------------------------------------------------------------------------------------


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    params = sample_identity(np.random.default_rng(8))
    for j in range(3):
        rgb = render_face(params, np.random.default_rng([8, j]), 112)
        cv2.imwrite(str(folder / f"face_{j}.jpg"), np.ascontiguousarray(rgb[:, :, ::-1]))
    return folder


def test_audit_reports_the_namesake_test(photo_dir, model_dir, tmp_path):
    clip = load_backend(f"local:{model_dir}", device="cpu")
    templates = ["a photo of {}", "{}"]
    result = run_audit(
        photo_dir,
        "Jordan Piggott",
        [clip],
        candidates=candidate_pool(["Jordan Piggott"], 20, 3, *LISTS),
        templates=templates,
        namesakes=12,
        namesake_seed=3,
    )
    ns = result["models"][0]["namesakes"]
    names, kinds = namesake_pool("Jordan Piggott", 12, 3, *LISTS)
    assert [r["name"] for r in ns["names"]] == names and [r["kind"] for r in ns["names"]] == kinds
    assert ns["n"] == 12 and ns["counts"] == {"first": 4, "surname": 4, "edit": 4}
    assert ns["n_templates"] == 2 and ns["seed"] == 3
    assert sum(ns["pick_shares"].values()) == pytest.approx(1.0)
    assert 1 / 13 - 1e-9 <= ns["p_value"] <= 1.0
    assert ns["top1_rate"] == ns["pick_shares"]["true"]
    json.dumps(result)  # audit.json holds it
    page = render_html(result, tmp_path / "audit.html").read_text(encoding="utf-8")
    assert "Namesake test" in page and "only the surname" in page
    assert f"{100 * ns['pick_shares']['surname']:.1f}%" in page
    assert "namesake p = " in summary_lines(result)[-1]
    few = run_audit(photo_dir, "王菲", [clip], candidates=["Ann Lee", "Bo Chen"], namesakes=50)
    ns = few["models"][0]["namesakes"]
    assert ns["n"] == 2 and ns["asked"] == 50 and "only 2 namesakes" in ns["note"]
    assert {r["name"] for r in ns["names"]} == {"菲王", "王菲菲"}
    page = render_html(few, tmp_path / "few.html").read_text("utf-8")
    assert "only 2 namesakes" in page and "1/3" in page


def test_cli_namesakes_option(photo_dir, model_dir, tmp_path):
    base = ["audit", "--photos", str(photo_dir), "--name", "Jordan Piggott"]
    base += ["--model", f"local:{model_dir}", "--pool-size", "10"]
    out = tmp_path / "on"
    assert main([*base, "--namesakes", "6", "--out", str(out)]) == 0
    ns = json.loads((out / "audit.json").read_text("utf-8"))["models"][0]["namesakes"]
    assert ns["n"] == 6 and ns["seed"] == 11  # the --seed default
    off = tmp_path / "off"
    assert main([*base, "--namesakes", "0", "--out", str(off)]) == 0
    assert json.loads((off / "audit.json").read_text("utf-8"))["models"][0]["namesakes"] is None
    assert main([*base, "--namesakes", "-1", "--out", str(tmp_path / "bad")]) == 2
