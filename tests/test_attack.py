"""Tests of the attack: plurality votes, seeded sweeps, metrics, predictions and encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from idia.attack import (
    PAPER_TEMPLATES,
    _draw_masks,
    decide,
    encode_photos,
    encode_prompts,
    load_image,
    metrics_table,
    predict,
    scores_long,
    summarize,
    sweep,
    template_correct,
    vote_scores,
)
from idia.stats import clopper_pearson

# ---------------------------------------------------------------------------------------------
# Plurality rule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preds", "true", "expected"),
    [
        ([3, 3, 5], 3, True),  # majority
        ([3], 3, True),
        ([5], 3, False),
        ([3, 5], 3, False),  # tie of ones
        ([3, 3, 5, 5, 7], 3, False),  # tie at the top
        ([3, 5, 7], 3, False),  # three-way tie of ones
        ([3, 3, 5, 7, 9], 3, True),  # plurality without majority
        ([5, 5, 3, 7, 9], 3, False),  # another name wins
        ([5, 7, 9], 3, False),  # true name absent
        ([5, 5, 5], 3, False),
        ([3, 3, 3, 5, 5], 3, True),
    ],
)
def test_template_correct_unique_plurality(preds, true, expected):
    assert template_correct(np.array(preds), true).item() is expected


def test_template_correct_vectorized_over_leading_axes():
    preds = np.array([[[3, 3, 5], [3, 5, 7]], [[1, 1, 1], [2, 1, 2]]])
    true = np.array([[3, 3], [1, 1]])
    assert template_correct(preds, true).tolist() == [[True, False], [True, False]]
    # a scalar true broadcasts
    assert template_correct(preds[0], 3).tolist() == [True, False]


def test_vote_scores_and_tau():
    # k = 3 photos (rows), T = 5 templates (columns); true name 3
    preds = np.array(
        [
            [3, 3, 3, 5, 7],
            [3, 5, 3, 5, 8],
            [4, 6, 3, 3, 9],
        ]
    )
    # template 0: 3,3,4 -> ok; 1: 3,5,6 -> tie; 2: 3,3,3 -> ok; 3: 5,5,3 -> no; 4: absent
    assert vote_scores(preds, 3) == 2
    scores = np.array([0, 1, 2, 3])
    assert decide(scores, 1).tolist() == [False, True, True, True]
    assert decide(scores, 2).tolist() == [False, False, True, True]
    assert decide(scores, 4).tolist() == [False, False, False, False]


# ---------------------------------------------------------------------------------------------
# Sweep
# ---------------------------------------------------------------------------------------------


def _sweep_loop(pred, person_of_photo, true_of_person, ks, n_draws, seed, clamp=False):
    """The obvious per-person, per-k, per-draw, per-template implementation."""
    n = len(true_of_person)
    out = np.zeros((n, len(ks), n_draws), dtype=np.int64)
    for p in range(n):
        rows = np.flatnonzero(person_of_photo == p)
        for ki, k in enumerate(ks):
            masks = _draw_masks(seed, p, k, len(rows), n_draws, clamp=clamp)
            for d in range(n_draws):
                sub = pred[rows[masks[d]]]
                score = 0
                for t in range(pred.shape[1]):
                    values, counts = np.unique(sub[:, t], return_counts=True)
                    top = counts.max()
                    winners = values[counts == top]
                    score += int(len(winners) == 1 and winners[0] == true_of_person[p])
                out[p, ki, d] = score
    return out


def _random_world(rng, n_persons=7, n_templates=5, n_names=4, photos=(2, 9)):
    counts = rng.integers(photos[0], photos[1], size=n_persons)
    person_of_photo = rng.permutation(np.repeat(np.arange(n_persons), counts))
    true_of_person = rng.integers(0, n_names, size=n_persons)
    # predictions biased toward the true name so that plurality outcomes vary
    pred = rng.integers(0, n_names, size=(len(person_of_photo), n_templates))
    lucky = rng.random(pred.shape) < 0.35
    pred = np.where(lucky, true_of_person[person_of_photo][:, None], pred)
    return pred, person_of_photo, true_of_person, counts


@pytest.mark.parametrize(
    ("world_seed", "n_names"),
    [(0, 4), (1, 4), (2, 3), (3, 12), (4, 60)],  # few names: frequent ties; many: singletons
)
def test_sweep_equals_reference_loop(world_seed, n_names):
    rng = np.random.default_rng(world_seed)
    pred, pop, true, counts = _random_world(rng, n_names=n_names, photos=(3, 10))
    ks = [1, 2, 3, int(counts.min())]
    got = sweep(pred, pop, true, ks, n_draws=6, seed=11)
    assert got.dtype == np.int16
    assert got.shape == (len(true), len(ks), 6)
    np.testing.assert_array_equal(got, _sweep_loop(pred, pop, true, ks, 6, 11))


def test_sweep_clamp_equals_reference_loop():
    rng = np.random.default_rng(5)
    pred, pop, true, _ = _random_world(rng, photos=(2, 6))
    ks = [1, 3, 8]
    got = sweep(pred, pop, true, ks, n_draws=4, seed=3, short="clamp")
    np.testing.assert_array_equal(got, _sweep_loop(pred, pop, true, ks, 4, 3, clamp=True))
    # k = 8 exceeds every person's photo count: all draws use all photos, so they agree
    assert (got[:, 2, :] == got[:, 2, :1]).all()


def test_sweep_is_seeded():
    rng = np.random.default_rng(9)
    pred, pop, true, _ = _random_world(rng, n_persons=10, photos=(8, 12))
    ks = [2, 3, 5]
    a = sweep(pred, pop, true, ks, n_draws=20, seed=1)
    b = sweep(pred, pop, true, ks, n_draws=20, seed=1)
    c = sweep(pred, pop, true, ks, n_draws=20, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sweep_person_result_independent_of_other_persons():
    rng = np.random.default_rng(4)
    pred, pop, true, _ = _random_world(rng, n_persons=6, photos=(5, 8))
    full = sweep(pred, pop, true, [1, 3, 5], n_draws=5, seed=7)
    # change every other person's predictions and the order of their photos: person 2 keeps
    # its scores (its own photos stay in the same relative order)
    pred2 = pred.copy()
    others = pop != 2
    pred2[others] = rng.integers(0, 4, size=(others.sum(), pred.shape[1]))
    order = np.concatenate([np.flatnonzero(others)[::-1], np.flatnonzero(~others)])
    again = sweep(pred2[order], pop[order], true, [5, 3], n_draws=5, seed=7)
    np.testing.assert_array_equal(full[2][[2, 1]], again[2])


def test_sweep_draws_are_k_distinct_photos_of_the_person():
    # Photo identity is encoded in the predictions: there is one template per photo (global
    # index j); every photo of person p predicts p's true name p, except that photo j predicts
    # a wrong name at template j. For k <= 2 a template is then correct iff its photo was not
    # drawn (one wrong vote ties or beats the true name), so the score is T - k exactly when
    # the draw consists of k distinct photos of the person. A photo of another person q would
    # predict q everywhere and spoil templates.
    n_persons, m = 4, 6
    person_of_photo = np.repeat(np.arange(n_persons), m)
    n_photos = len(person_of_photo)
    true_of_person = np.arange(n_persons)
    pred = np.repeat(person_of_photo[:, None], n_photos, axis=1)
    pred[np.arange(n_photos), np.arange(n_photos)] = 99
    scores = sweep(pred, person_of_photo, true_of_person, [1, 2, 3], n_draws=40, seed=0)
    assert (scores[:, 0, :] == n_photos - 1).all()
    assert (scores[:, 1, :] == n_photos - 2).all()
    assert (scores[:, 2, :] == n_photos).all()  # two true votes beat one wrong vote
    for k in (1, 2, 5, m):
        masks = _draw_masks(0, 3, k, m, 30)
        assert masks.shape == (30, m)
        assert (masks.sum(axis=1) == k).all()


def test_sweep_draw_subsets_cover_photos_uniformly():
    masks = _draw_masks(seed=0, person=0, k=2, m=5, n_draws=20000)
    freq = masks.mean(axis=0)
    np.testing.assert_allclose(freq, 2 / 5, atol=0.02)
    pairs = {tuple(np.flatnonzero(row)) for row in masks}
    assert len(pairs) == 10  # every 2-subset of 5 occurs


def test_sweep_k_equal_m_is_the_same_for_all_draws():
    rng = np.random.default_rng(1)
    m = 7
    pop = np.repeat(np.arange(5), m)
    true = np.arange(5)
    pred = rng.integers(0, 5, size=(len(pop), 8))
    scores = sweep(pred, pop, true, [m], n_draws=10, seed=3)
    assert (scores == scores[:, :, :1]).all()
    # and it equals the score over all photos
    for p in range(5):
        assert scores[p, 0, 0] == vote_scores(pred[pop == p], true[p])


def test_sweep_short_person_error_lists_the_person():
    pop = np.array([0, 0, 0, 1, 2, 2, 2])
    pred = np.zeros((7, 2), dtype=int)
    with pytest.raises(ValueError, match=r"1 \(1 photos\)") as info:
        sweep(pred, pop, np.zeros(3, dtype=int), [1, 3], n_draws=2, seed=0)
    assert "k = 3" in str(info.value)
    assert "0 (" not in str(info.value)


def test_sweep_person_without_photos_is_an_error():
    pop = np.array([0, 0, 2, 2])
    with pytest.raises(ValueError, match=r"\[1\]"):
        sweep(np.zeros((4, 1), int), pop, np.zeros(3, int), [1], 2, 0, short="clamp")


def test_sweep_meets_performance_target():
    import time

    rng = np.random.default_rng(0)
    n, m, t = 120, 30, 21
    pop = np.repeat(np.arange(n), m)
    true = rng.integers(0, 1000, size=n)
    pred = np.where(
        rng.random((n * m, t)) < 0.3, true[pop][:, None], rng.integers(0, 1000, (n * m, t))
    )
    start = time.perf_counter()
    scores = sweep(pred, pop, true, list(range(1, 31)), n_draws=20, seed=0)
    elapsed = time.perf_counter() - start
    assert scores.shape == (n, 30, 20)
    assert elapsed < 10, f"sweep took {elapsed:.2f} s"  # target 3 s; slack for slow CI


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def test_metrics_table_on_constructed_case():
    # 4 persons (2 members), 2 ks, 2 draws
    scores = np.array(
        [
            [[3, 0], [5, 5]],  # member
            [[0, 0], [2, 1]],  # member
            [[1, 0], [0, 0]],  # non-member
            [[0, 0], [0, 0]],  # non-member
        ]
    )
    member = np.array([True, True, False, False])
    df = metrics_table(scores, member, ks=[1, 10], tau=1)
    assert list(df.columns) == [
        "k", "draw", "tp", "fn", "fp", "tn", "accuracy", "tpr", "fnr", "fpr", "tnr"
    ]  # fmt: skip
    assert df[["k", "draw"]].values.tolist() == [[1, 0], [1, 1], [10, 0], [10, 1]]
    assert df[["tp", "fn", "fp", "tn"]].values.tolist() == [
        [1, 1, 1, 1],
        [0, 2, 0, 2],
        [2, 0, 0, 2],
        [2, 0, 0, 2],
    ]
    np.testing.assert_allclose(df["accuracy"], [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(df["tpr"], [0.5, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(df["fnr"], [0.5, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(df["fpr"], [0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(df["tnr"], [0.5, 1.0, 1.0, 1.0])
    # tau = 2 changes the calls
    df2 = metrics_table(scores, member, ks=[1, 10], tau=2)
    assert df2[["tp", "fn", "fp", "tn"]].values.tolist()[0] == [1, 1, 0, 2]

    summ = summarize(df)
    assert list(summ.columns) == ["k", "metric", "mean", "sd", "n", "lo", "hi"]
    row = summ[(summ.k == 1) & (summ.metric == "tpr")].iloc[0]
    assert row["mean"] == pytest.approx(0.25)
    assert row["sd"] == pytest.approx(np.std([0.5, 0.0], ddof=1))
    # person-level interval: 0.5 successes (mean of 1 and 0) of the 2 members
    assert row["n"] == 2
    assert (row["lo"], row["hi"]) == pytest.approx(clopper_pearson(0.5, 2))
    row = summ[(summ.k == 10) & (summ.metric == "accuracy")].iloc[0]
    assert (row["mean"], row["sd"]) == (1.0, 0.0)
    # 4 of 4 identities right in every draw: sd 0, but the exact interval is [0.025^(1/4), 1]
    assert row["n"] == 4 and row["lo"] == pytest.approx(0.025**0.25) and row["hi"] == 1.0
    row = summ[(summ.k == 1) & (summ.metric == "fpr")].iloc[0]
    assert row["n"] == 2 and (row["lo"], row["hi"]) == pytest.approx(clopper_pearson(0.5, 2))
    assert summ.metric.tolist()[:5] == ["accuracy", "tpr", "fnr", "fpr", "tnr"]


def test_metrics_nan_without_members_and_single_draw_sd():
    scores = np.array([[[1]], [[0]]])
    df = metrics_table(scores, np.array([False, False]), ks=[3], tau=1)
    assert np.isnan(df.loc[0, "tpr"]) and np.isnan(df.loc[0, "fnr"])
    assert df.loc[0, "fpr"] == 0.5
    summ = summarize(df)
    assert (summ["sd"].fillna(0) == 0).all()
    assert summ.loc[summ.metric == "fpr", "mean"].item() == 0.5
    no_members = summ[summ.metric.isin(["tpr", "fnr"])]
    assert (no_members["n"] == 0).all() and no_members[["lo", "hi"]].isna().all().all()


def test_scores_long():
    scores = np.arange(12).reshape(2, 3, 2)
    df = scores_long(scores, ["ann", "bob"], [1, 5, 9])
    assert list(df.columns) == ["person_id", "k", "draw", "score"]
    assert len(df) == 12
    assert df.iloc[7].tolist() == ["bob", 1, 1, 7]
    assert df.set_index(["person_id", "k", "draw"]).loc[("ann", 9, 1), "score"] == 5


# ---------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------


def test_predict_rank_and_margin_on_hand_built_embeddings():
    s = np.sqrt(0.5)
    # T = 2 templates, C = 3 candidates, D = 2
    text = np.array(
        [
            [[1.0, 0.0], [0.0, 1.0], [s, s]],
            [[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]],
        ],
        dtype=np.float32,
    )
    images = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    true = np.array([0, 2])
    out = predict(images, text, true)
    # photo 0 (x-axis): t0 sims [1, 0, s] -> pred 0; t1 sims [0, 1, -1] -> pred 1
    # photo 1 (y-axis): t0 sims [0, 1, s] -> pred 1; t1 sims [1, 0, 0] -> pred 0
    assert out["pred"].tolist() == [[0, 1], [1, 0]]
    assert out["pred"].dtype == np.int32 and out["rank"].dtype == np.int32
    # ranks of the true name: photo 0 true 0: t0 rank 0, t1 sim 0 below 1 -> rank 1
    # photo 1 true 2: t0 sim s below 1 -> rank 1; t1 sim 0, tie with cand 1 (index 1 < 2) -> 2
    assert out["rank"].tolist() == [[0, 1], [1, 2]]
    np.testing.assert_allclose(out["margin"], [[1 - s, -1.0], [s - 1, -1.0]], atol=1e-6)
    assert out["margin"].dtype == np.float32
    # chunking does not change anything
    small = predict(images, text, true, chunk_elems=1)
    for key in out:
        np.testing.assert_array_equal(out[key], small[key])


def test_predict_rank_zero_iff_pred_is_true():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(50, 8)).astype(np.float32)
    txt = rng.normal(size=(3, 20, 8)).astype(np.float32)
    txt[:, 5] = txt[:, 6]  # exact ties between candidates 5 and 6
    true = rng.integers(0, 20, size=50)
    true[:10] = 6
    out = predict(img, txt, true, chunk_elems=100)
    assert ((out["rank"] == 0) == (out["pred"] == true[:, None])).all()
    sims = np.einsum("pd,tcd->ptc", img, txt)
    np.testing.assert_array_equal(out["pred"], sims.argmax(-1))
    assert ((out["margin"] > 0) <= (out["rank"] == 0)).all()


# ---------------------------------------------------------------------------------------------
# Encoders (with a tiny stand-in for an open_clip model)
# ---------------------------------------------------------------------------------------------


class FakeTokenizer:
    """Maps each prompt to a fixed-length LongTensor of character codes."""

    def __call__(self, texts):
        width = 64
        rows = [[ord(c) for c in t[:width]] + [0] * (width - len(t[:width])) for t in texts]
        return torch.tensor(rows, dtype=torch.long)


class FakeModel(torch.nn.Module):
    def __init__(self, dim=6):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.char_emb = torch.nn.Parameter(torch.randn(256, dim, generator=g))
        self.proj = torch.nn.Parameter(torch.randn(3, dim, generator=g))
        self.seen_texts: list[tuple[int, ...]] = []
        self.inference_mode: list[bool] = []
        self.image_batches: list[int] = []

    def encode_text(self, tokens):
        self.inference_mode.append(torch.is_inference_mode_enabled())
        self.seen_texts.extend(tuple(row.tolist()) for row in tokens)
        pos = torch.arange(tokens.shape[1], dtype=torch.float32)[None, :, None] + 1
        return (self.char_emb[tokens] * pos).sum(1) * 3.0  # deliberately not normalized

    def encode_image(self, images):
        self.image_batches.append(images.shape[0])
        return images.mean(dim=(2, 3)) @ self.proj * 5.0


def test_paper_templates():
    assert len(PAPER_TEMPLATES) == 21
    assert PAPER_TEMPLATES[0] == "{}" and PAPER_TEMPLATES[-1] == "{} in a dress"
    assert all(t.count("{}") == 1 for t in PAPER_TEMPLATES)


def test_encode_prompts_encodes_each_prompt_once_and_normalizes():
    model, tok = FakeModel(), FakeTokenizer()
    names = ["Ann Lee", "Bob Ray", "Cy Young"]
    templates = ["{}", "a photo of {}", "{} in a suit", "actor {}"]
    emb = encode_prompts(model, tok, names, templates, batch_size=5, progress=False)
    assert emb.shape == (4, 3, 6) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, rtol=1e-5)
    expected = {tuple(tok([t.format(n)])[0].tolist()) for t in templates for n in names}
    assert len(model.seen_texts) == 12
    assert model.inference_mode == [True, True, True]  # 12 prompts in batches of 5
    assert set(model.seen_texts) == expected
    # [t, c] is the embedding of template t filled with name c
    single = model.encode_text(tok(["actor Bob Ray"])).detach()
    single = (single / single.norm(dim=-1, keepdim=True)).numpy()[0]
    np.testing.assert_allclose(emb[3, 1], single, rtol=1e-5, atol=1e-6)


def test_encode_prompts_rejects_template_without_placeholder():
    with pytest.raises(ValueError, match="a photo of somebody"):
        encode_prompts(FakeModel(), FakeTokenizer(), ["Ann"], ["a photo of somebody"])


def _write_images(tmp_path, n):
    paths = []
    for i in range(n):
        arr = np.full((8, 8, 3), (i * 37) % 256, dtype=np.uint8)
        arr[..., i % 3] = 255
        p = tmp_path / f"img{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def _preprocess(img):
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def test_encode_photos_batches_and_normalizes(tmp_path):
    paths = _write_images(tmp_path, 7)
    model = FakeModel()
    emb = encode_photos(model, _preprocess, paths, batch_size=3, progress=False)
    assert emb.shape == (7, 6) and emb.dtype == np.float32
    assert model.image_batches == [3, 3, 1]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, rtol=1e-5)
    with torch.no_grad():
        one = model.encode_image(_preprocess(load_image(paths[4]))[None])
    one = (one / one.norm()).numpy()[0]
    np.testing.assert_allclose(emb[4], one, rtol=1e-5, atol=1e-6)


def test_load_image_converts_to_rgb(tmp_path):
    p = tmp_path / "gray.png"
    Image.fromarray(np.zeros((4, 5), dtype=np.uint8)).save(p)
    img = load_image(p)
    assert img.mode == "RGB" and img.size == (5, 4)


def test_load_image_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg.*empty"):
        load_image(empty)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a jpeg at all")
    with pytest.raises(ValueError, match="corrupt.jpg.*not a readable image"):
        load_image(corrupt)
    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "full.png"
    )
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.png"):
        load_image(truncated)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg")


def test_encode_photos_names_a_bad_file(tmp_path):
    paths = _write_images(tmp_path, 2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.jpg"):
        encode_photos(FakeModel(), _preprocess, [*paths, bad], progress=False)


def test_scores_long_round_trips_with_sweep():
    pop = np.repeat(np.arange(3), 4)
    pred = np.zeros((12, 2), dtype=int)
    scores = sweep(pred, pop, np.array([0, 1, 0]), [1, 4], n_draws=3, seed=0)
    df = scores_long(scores, ["a", "b", "c"], [1, 4])
    assert isinstance(df, pd.DataFrame)
    assert df.groupby("person_id")["score"].sum().to_dict() == {"a": 12, "b": 0, "c": 12}


# ---------------------------------------------------------------------------------------------
# Large candidate pools: chunked similarities against the whole similarity tensor
# ---------------------------------------------------------------------------------------------


def _reference_predict(img: np.ndarray, txt: np.ndarray, true: np.ndarray) -> dict:
    """The definition, on the whole [P, T, C] similarity tensor at once (float64)."""
    sims = np.einsum("pd,tcd->ptc", img.astype(np.float64), txt.astype(np.float64))
    s_true = np.take_along_axis(sims, true[:, None, None], axis=2)
    before = np.arange(txt.shape[1])[None, None, :] < true[:, None, None]
    rank = ((sims > s_true) | ((sims == s_true) & before)).sum(axis=2)
    others = sims.copy()
    np.put_along_axis(others, true[:, None, None], -np.inf, axis=2)
    return {"pred": sims.argmax(axis=2), "rank": rank, "margin": s_true[..., 0] - others.max(2)}


def _tied_pool(n_photos=23, n_templates=3, n_cands=37, dim=4, seed=3):
    """Small-integer embeddings: every dot product is exact in float32, so ties are real.

    Each photo's true name has a copy (equal vector, hence equal similarity) both before and
    after it in the pool, and candidates 0 and n_cands - 1 are copies of each other, so ties
    straddle every chunk boundary the tests choose.
    """
    rng = np.random.default_rng(seed)
    img = rng.integers(-2, 3, (n_photos, dim)).astype(np.float32)
    txt = rng.integers(-2, 3, (n_templates, n_cands, dim)).astype(np.float32)
    true = rng.integers(1, n_cands - 1, n_photos)
    true[:4] = [1, 5, 6, n_cands - 2]
    txt[:, 0] = txt[:, n_cands - 1]
    for t in set(true.tolist()):
        txt[:, t - 1] = txt[:, t]  # a tie placed before the true name: it wins the argmax
    img[5] = 0.0  # a photo equally similar to every candidate
    return img, txt, true


@pytest.mark.parametrize("chunk_elems", [1, 12, 13, 60, 3 * 4 * 7, 3 * 37 * 5, 1 << 24])
def test_predict_chunks_match_the_whole_tensor_with_ties(chunk_elems):
    img, txt, true = _tied_pool()
    n_t, n_c, dim = txt.shape
    # c_step = chunk_elems // (T * D) names: 1 (every template's candidates split name by name),
    # 5, 7 (boundaries inside the tied pairs), 37 (one chunk); photos split as well
    whole = predict(img, txt, true, chunk_elems=1 << 30)
    ref = _reference_predict(img, txt, true)
    out = predict(img, txt, true, chunk_elems=chunk_elems)
    for key in ("pred", "rank"):
        np.testing.assert_array_equal(out[key], whole[key])
        np.testing.assert_array_equal(out[key], ref[key])
    np.testing.assert_array_equal(out["margin"], whole["margin"])
    np.testing.assert_allclose(out["margin"], ref["margin"])
    assert ((out["rank"] == 0) == (out["pred"] == true[:, None])).all()
    # the planted ties took effect: the copy before the true name wins, with margin exactly 0
    assert (out["pred"] != true[:, None]).any() and (out["margin"] == 0).any()
    assert (out["pred"][5] == 0).all() and (out["rank"][5] == true[5]).all()


def test_predict_chunked_random_pool_and_memory_map(tmp_path):
    rng = np.random.default_rng(11)
    img = rng.normal(size=(40, 16)).astype(np.float32)
    txt = rng.normal(size=(21, 301, 16)).astype(np.float32)
    txt /= np.linalg.norm(txt, axis=-1, keepdims=True)
    true = rng.integers(0, 301, 40)
    txt[:, true[0]] = img[0] / np.linalg.norm(img[0])  # one photo the model knows
    path = tmp_path / "text_emb.npy"
    np.save(path, txt)
    mapped = np.load(path, mmap_mode="r")
    whole = predict(img, txt, true, chunk_elems=1 << 30)
    # 21 * 16 * 10 elements: chunks of 10 names (301 is not a multiple), 1 photo at a time
    out = predict(img, mapped, true, chunk_elems=21 * 16 * 10)
    for key in ("pred", "rank"):
        np.testing.assert_array_equal(out[key], whole[key])
    np.testing.assert_allclose(out["margin"], whole["margin"], rtol=1e-6, atol=1e-6)
    ref = _reference_predict(img, txt, true)
    np.testing.assert_array_equal(out["pred"], ref["pred"])
    np.testing.assert_allclose(out["margin"], ref["margin"], atol=1e-5)
    assert (out["rank"][0] == 0).all() and (out["rank"][1:] > 0).any()


def test_encode_prompts_to_a_file_equals_in_memory(tmp_path):
    model, tok = FakeModel(), FakeTokenizer()
    names = [f"Name{i} Last{i}" for i in range(11)]
    templates = ["{}", "actor {}", "{} in a suit"]
    in_memory = encode_prompts(model, tok, names, templates, batch_size=4, progress=False)
    path = tmp_path / "text_emb.npy"
    mapped = encode_prompts(model, tok, names, templates, batch_size=4, progress=False, out=path)
    assert isinstance(mapped, np.memmap) and mapped.shape == (3, 11, 6)
    np.testing.assert_array_equal(np.asarray(mapped), in_memory)
    np.testing.assert_array_equal(np.load(path), in_memory)


@pytest.mark.parametrize("tau", [0, 22, 1.5, True])
def test_tau_outside_the_templates_is_refused_with_the_key_to_fix(tau):
    scores = np.array([[[21]], [[0]]])
    with pytest.raises(ValueError, match=rf"attack.tau = {tau!r} but the attack has 21 prompt"):
        metrics_table(scores, np.array([True, False]), ks=[1], tau=tau, n_templates=21)
    df = metrics_table(scores, np.array([True, False]), ks=[1], tau=21, n_templates=21)
    assert (df["tp"].tolist(), df["fp"].tolist()) == ([1], [0])
