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

DIM, N_TEMPLATES, N_PHOTOS, N_DECOYS = 64, 3, 4, 50  # 4 photos: their mean stays exact
ALPHA = 0.05


def _vec(*parts: str) -> np.ndarray:
    """A fixed random unit vector per string (a token, or a whole name): signs times 1/8.

    Entries of ±2^-3 (and photos on a 2^-12 grid, ``_photos``) make every similarity exact in
    float32 whatever the order of summation, so names with the same embedding tie exactly
    (a matmul kernel may sum one column in another order and break a float tie at random).
    """
    seed = int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=DIM) / np.sqrt(DIM)


def _part(name: str, kind: str) -> str:
    """The part of a name a partial model knows: the surname, or the first name."""
    return name_key(name.split()[-1] if kind == "surname" else name.split()[0])


def _text_emb(names: list[str], kind: str) -> np.ndarray:
    """``[T, C, D]`` text embeddings of a synthetic model.

    ``surname`` / ``first``: a name's embedding is its surname's (first name's) vector and
    nothing else — the model ties a face to the family (first) name and cannot tell the persons
    who share it apart, the failure the namesake test exists to catch; ``name``: each name its
    own vector (the model knows full names).
    """
    rows = []
    for t in range(N_TEMPLATES):
        embs = []
        for n in names:
            v = _vec("name", name_key(n), str(t)) if kind == "name" else _vec(kind, _part(n, kind))
            embs.append(v)
        rows.append(embs)
    return np.asarray(rows, np.float32)


def _photos(name: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Photo embeddings close to what the model ties the person's face to."""
    if kind == "name":
        anchor = np.mean([_vec("name", name_key(name), str(t)) for t in range(N_TEMPLATES)], 0)
    else:
        anchor = _vec(kind, _part(name, kind))
    x = anchor + 0.15 * rng.normal(size=(N_PHOTOS, DIM)) / np.sqrt(DIM)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (np.round(x * 4096) / 4096).astype(np.float32)  # on the grid: exact similarities


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
    return p_decoy, namesake_scores(photos, _text_emb([*names, name], kind), kinds, ALPHA)


def _persons(n: int) -> list[str]:
    female, male, last = LISTS
    rng = np.random.default_rng(99)
    firsts = [n for n in female + male if n.isalpha()]
    lasts = [n for n in last if n.isalpha()]
    return [
        f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}" for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("kind", "picked", "shares_part"),
    [("surname", "surname", "surname"), ("first", "first", "first")],
)
def test_partial_name_model_passes_random_decoys_but_not_namesakes(kind, picked, shares_part):
    """A model that knows a face by its surname (or first name) alone: the random-decoy test is
    passed for every person, the namesake test for none — and the page says which part it knows.

    The true name ties with every namesake that shares the known part (the same-surname kind and
    the first-name edits for a surname model), and ties count against it, so its namesake
    p-value is at least (1 + those namesakes) / 51: not passed, whatever the seed.
    """
    results = [_both_tests(name, kind, i) for i, name in enumerate(_persons(20))]
    for i, (name, (p_decoy, ns)) in enumerate(zip(_persons(20), results)):
        # against random names the known part alone wins (ties with the rare random decoy that
        # shares it, e.g. another Marissa): passed for every person
        pool = candidate_pool([name], N_DECOYS + 1, i, *LISTS)[1:]
        sharing = sum(_part(d, kind) == _part(name, kind) for d in pool)
        assert p_decoy == pytest.approx((1 + sharing) / (N_DECOYS + 1)), (name, p_decoy)
        assert p_decoy <= ALPHA, (name, p_decoy)
        # against namesakes: not passed, for every person
        assert ns["passed"] is False and ns["alpha"] == ALPHA, (name, ns["p_value"])
        assert ns["p_value"] >= (1 + ns["counts"][shares_part]) / (N_DECOYS + 1)
        # what the model picks: a namesake with the known part, never the name itself
        assert ns["pick_shares"][picked] == 1.0 and ns["pick_shares"]["true"] == 0.0
    # the namesake p-values are far from the random-decoy ones (all at 1 / 51)
    assert min(r[1]["p_value"] for r in results) > 10 / (N_DECOYS + 1)


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

    def audit(**alpha):
        return run_audit(
            photo_dir,
            "Jordan Piggott",
            [clip],
            candidates=candidate_pool(["Jordan Piggott"], 20, 3, *LISTS),
            templates=["a photo of {}", "{}"],
            namesakes=12,
            namesake_seed=3,
            **alpha,
        )

    result = audit()
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
    # the test's answer at alpha: in audit.json, on the page and in the summary line
    assert ns["alpha"] == 0.05 and ns["passed"] == (ns["p_value"] <= 0.05)
    verdict = "passed" if ns["passed"] else "not passed"
    assert ns["outcome"] == f"namesake test: {verdict} at alpha = 0.05"
    assert f"Namesake test: {verdict} at α = 0.05" in page
    assert summary_lines(result)[-1].endswith(f"{ns['outcome']}, 3 photos)")
    lenient = audit(alpha=0.99)["models"][0]["namesakes"]
    assert lenient["p_value"] == ns["p_value"] and lenient["passed"] is True
    with pytest.raises(ValueError, match="alpha .* between 0 and 1, got 0"):
        run_audit(photo_dir, "Jordan Piggott", [clip], candidates=["Ann Lee"], alpha=0)
    few = run_audit(photo_dir, "王菲", [clip], candidates=["Ann Lee", "Bo Chen"], namesakes=50)
    ns = few["models"][0]["namesakes"]
    assert ns["n"] == 2 and ns["asked"] == 50 and "only 2 namesakes" in ns["note"]
    assert {r["name"] for r in ns["names"]} == {"菲王", "王菲菲"}
    page = render_html(few, tmp_path / "few.html").read_text("utf-8")
    assert "only 2 namesakes" in page and "1/3" in page
    assert ns["alpha"] == 0.05 and ns["passed"] == (ns["p_value"] <= 0.05)
    # a name without any valid-looking edit: the test does not apply, and says so
    none = run_audit(photo_dir, "王王", [clip], candidates=["Ann Lee"], namesakes=5)
    ns = none["models"][0]["namesakes"]
    assert ns["n"] == 0 and ns["passed"] is None and ns["p_value"] is None
    assert ns["outcome"] == "namesake test: does not apply"
    assert "namesake test: does not apply" in summary_lines(none)[-1]


def test_cli_namesakes_option(photo_dir, model_dir, tmp_path):
    base = ["audit", "--photos", str(photo_dir), "--name", "Jordan Piggott"]
    base += ["--model", f"local:{model_dir}", "--pool-size", "10"]
    out = tmp_path / "on"
    assert main([*base, "--namesakes", "6", "--out", str(out)]) == 0
    ns = json.loads((out / "audit.json").read_text("utf-8"))["models"][0]["namesakes"]
    assert ns["n"] == 6 and ns["seed"] == 11  # the --seed default
    assert ns["alpha"] == 0.05 and ns["passed"] == (ns["p_value"] <= 0.05)
    strict = tmp_path / "strict"
    assert main([*base, "--namesakes", "6", "--alpha", "0.001", "--out", str(strict)]) == 0
    ns = json.loads((strict / "audit.json").read_text("utf-8"))["models"][0]["namesakes"]
    assert ns["alpha"] == 0.001 and ns["passed"] is False  # 1/7 is the smallest p-value here
    assert main([*base, "--alpha", "1.5", "--out", str(tmp_path / "bad-alpha")]) == 2
    off = tmp_path / "off"
    assert main([*base, "--namesakes", "0", "--out", str(off)]) == 0
    assert json.loads((off / "audit.json").read_text("utf-8"))["models"][0]["namesakes"] is None
    assert main([*base, "--namesakes", "-1", "--out", str(tmp_path / "bad")]) == 2
