"""Tests of the person-level statistics: ROC, bootstrap, exact bounds, decoy p-values, BH."""

from __future__ import annotations

import numpy as np
import pytest

from idia.attack import template_correct
from idia.stats import (
    auc,
    benjamini_hochberg,
    bootstrap,
    clopper_pearson,
    combined_score,
    decoy_pvalues,
    fpr_claim_sentence,
    fpr_upper_bound,
    nonmembers_needed,
    operating_points,
    person_scores,
    person_stats,
    roc_curve,
    summarize_model,
    tau_table,
    tpr_at_fpr,
    uniformity,
)

# ---------------------------------------------------------------------------------------------
# ROC and AUC
# ---------------------------------------------------------------------------------------------


def test_roc_curve_with_ties_moves_tied_scores_in_one_step():
    scores = [3, 2, 2, 1, 0]
    labels = [1, 1, 0, 0, 1]
    fpr, tpr, thr = roc_curve(scores, labels)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1])
    np.testing.assert_array_equal(thr, [np.inf, 3, 2, 1, 0])


def test_auc_hand_cases():
    # pairs (member, non-member): (3,2)=1 (3,1)=1 (2,2)=½ (2,1)=1 (0,2)=0 (0,1)=0 → 3.5/6
    assert auc([3, 2, 2, 1, 0], [1, 1, 0, 0, 1]) == pytest.approx(3.5 / 6)
    assert auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auc([5, 5, 5, 5, 5], [1, 0, 1, 0, 0]) == 0.5


def test_auc_equals_trapezoid_area_under_roc():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 6, 200)
    y = rng.random(200) < 0.4
    fpr, tpr, _ = roc_curve(s, y)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert auc(s, y) == pytest.approx(area)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="members and non-members"):
        auc([1, 2], [1, 1])


def test_tpr_at_fpr_hand_case():
    # members 9 7 5 3, non-members 8 6 4 2 1 → at FPR 0: only 9 (1/4); one FP (8) allows 7 (2/4)
    scores = [9, 8, 7, 6, 5, 4, 3, 2, 1]
    labels = [1, 0, 1, 0, 1, 0, 1, 0, 0]
    assert tpr_at_fpr(scores, labels, 0.0) == 0.25
    assert tpr_at_fpr(scores, labels, 0.19) == 0.25
    assert tpr_at_fpr(scores, labels, 0.2) == 0.5
    assert tpr_at_fpr(scores, labels, 0.4) == 0.75
    assert tpr_at_fpr(scores, labels, 1.0) == 1.0


def test_tpr_at_fpr_with_a_tie_across_classes():
    # the tied 5s can only be taken together: FPR 0 keeps just the 9
    assert tpr_at_fpr([9, 5, 5, 1], [1, 1, 0, 0], 0.0) == 0.5
    assert tpr_at_fpr([9, 5, 5, 1], [1, 1, 0, 0], 0.5) == 1.0


def test_operating_points_counts():
    v = np.array([0, 1, 2, 3, 0, 1])
    y = np.array([1, 1, 1, 1, 0, 0], bool)
    df = operating_points(v, y, taus=range(1, 4))
    assert df["tau"].tolist() == [1, 2, 3]
    assert df["tp"].tolist() == [3, 2, 1]
    assert df["fn"].tolist() == [1, 2, 3]
    assert df["fp"].tolist() == [1, 0, 0]
    assert df["tn"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(df["tpr"], [0.75, 0.5, 0.25])
    np.testing.assert_allclose(df["fpr"], [0.5, 0, 0])


# ---------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------


def _toy_scores(n=150, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    s = rng.normal(size=n) + 1.2 * y
    return s, y


def test_bootstrap_is_deterministic_and_contains_the_estimate():
    s, y = _toy_scores()
    a = bootstrap(s, y, n_boot=300, seed=7, fpr_levels=(0.1, 0.01))
    b = bootstrap(s, y, n_boot=300, seed=7, fpr_levels=(0.1, 0.01))
    c = bootstrap(s, y, n_boot=300, seed=8, fpr_levels=(0.1, 0.01))
    assert a == b
    assert (a["auc_lo"], a["auc_hi"]) != (c["auc_lo"], c["auc_hi"])
    assert a["auc"] == auc(s, y)
    assert a["auc_lo"] <= a["auc"] <= a["auc_hi"]
    assert a["auc_hi"] - a["auc_lo"] > 0.05  # 150 identities leave real uncertainty
    for lev in ("0.1", "0.01"):
        key = f"tpr_at_fpr_{lev}"
        assert a[key] == tpr_at_fpr(s, y, float(lev))
        assert a[f"{key}_lo"] <= a[key] <= a[f"{key}_hi"]


def test_bootstrap_chunking_does_not_change_the_result():
    s, y = _toy_scores()
    a = bootstrap(s, y, n_boot=100, seed=1)
    b = bootstrap(s, y, n_boot=100, seed=1, chunk_elems=500)  # 3 replicates per chunk
    assert a == b


def test_bootstrap_replicate_tpr_matches_the_roc_definition():
    from idia.stats import _tpr_at_fpr_rows

    rng = np.random.default_rng(5)
    for _ in range(50):
        s = rng.integers(0, 8, 40).astype(float)
        y = rng.random(40) < 0.5
        if y.all() or not y.any():
            continue
        for lev in (0.0, 0.05, 0.1, 0.3):
            row = _tpr_at_fpr_rows(s[y][None], s[~y][None], lev)[0]
            assert row == pytest.approx(tpr_at_fpr(s, y, lev))


# ---------------------------------------------------------------------------------------------
# Exact bounds
# ---------------------------------------------------------------------------------------------


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.3085, abs=1e-4)
    lo, hi = clopper_pearson(5, 10)
    assert lo == pytest.approx(0.1871, abs=1e-4)
    assert hi == pytest.approx(0.8129, abs=1e-4)
    assert clopper_pearson(10, 10) == (pytest.approx(1 - 0.3085, abs=1e-4), 1.0)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_clopper_pearson_vectorized():
    lo, hi = clopper_pearson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    np.testing.assert_allclose(lo, [0, 0.1871, 0.6915], atol=1e-4)
    np.testing.assert_allclose(hi, [0.3085, 0.8129, 1.0], atol=1e-4)


def test_nonmembers_needed_and_rule_of_three():
    assert nonmembers_needed(0.01) == 299
    assert nonmembers_needed(0.001) == 2995
    assert nonmembers_needed(0.05) == 59
    # the bound is met at n and not at n - 1
    for fpr in (0.01, 0.001, 0.05):
        n = nonmembers_needed(fpr)
        assert fpr_upper_bound(0, n) <= fpr < fpr_upper_bound(0, n - 1)


def test_fpr_claim_sentence():
    assert fpr_claim_sentence(0, 48) == (
        "0 false positives among 48 non-members: FPR ≤ 6.1% (95% upper bound); "
        "claiming FPR ≤ 1% needs ≥ 299 non-members with none flagged"
    )
    s = fpr_claim_sentence(1, 100, fpr_claim=0.001)
    assert s.startswith("1 false positive among 100 non-members: FPR = 1% observed, ≤ 4.7%")
    assert s.endswith("claiming FPR ≤ 0.1% needs ≥ 2995 non-members with none flagged")


# ---------------------------------------------------------------------------------------------
# Decoy p-values, BH, uniformity
# ---------------------------------------------------------------------------------------------


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _null_world(n_persons, n_decoys, m=3, n_t=2, d=16, seed=0):
    """Random embeddings: each person's name is one more random name, so H0 holds."""
    rng = np.random.default_rng(seed)
    n_cand = n_persons + n_decoys
    text = _unit(rng.normal(size=(n_t, n_cand, d))).astype(np.float32)
    person_index = np.repeat(np.arange(n_persons), m)
    image = _unit(rng.normal(size=(n_persons * m, d))).astype(np.float32)
    true_of_person = np.arange(n_persons)  # study names come first
    decoy = np.r_[np.zeros(n_persons, bool), np.ones(n_decoys, bool)]
    return image, text, person_index, true_of_person, decoy


def test_decoy_pvalues_are_uniform_under_the_null():
    image, text, pi, true, decoy = _null_world(2000, 400, seed=11)
    p = decoy_pvalues(image, text, pi, true, decoy)
    assert p.shape == (2000,)
    assert np.all((p > 0) & (p <= 1))
    assert p.min() >= 1 / 401
    u = uniformity(p)
    assert u["n"] == 2000
    assert u["ks_pvalue"] > 0.01
    assert np.mean(p <= 0.05) == pytest.approx(0.05, abs=0.015)


def test_decoy_pvalues_are_small_for_a_planted_name_and_match_the_brute_force():
    image, text, pi, true, decoy = _null_world(20, 300, m=4, n_t=3, seed=2)
    planted = np.arange(10)
    photos_mean = np.stack([image[pi == i].mean(axis=0) for i in planted])
    text[:, planted] = _unit(text[:, planted] + 3 * photos_mean[None])  # the model "knows" 0..9
    p = decoy_pvalues(image, text, pi, true, decoy)
    assert np.all(p[planted] == 1 / 301)
    # brute force: mean over photos and templates of the cosines, one person at a time
    for i in range(20):
        sims = np.einsum("pd,tcd->ptc", image[pi == i].astype(np.float64), text).mean(axis=(0, 1))
        n_ge = int((sims[decoy] >= sims[true[i]]).sum())
        assert p[i] == pytest.approx((1 + n_ge) / 301)
    # the own name is never its own decoy, even when the mask marks it
    p_all = decoy_pvalues(image, text, pi, true, np.ones(text.shape[1], bool))
    assert p_all[0] == pytest.approx(1 / text.shape[1])


def test_benjamini_hochberg_known_vectors():
    p = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.5])
    # at q = 0.05 the thresholds i q / 6 are all below p_(i): nothing is rejected
    assert benjamini_hochberg(p, 0.05).tolist() == [False] * 6
    # at q = 0.06 the thresholds are 0.01 i: exactly the first five
    assert benjamini_hochberg(p, 0.06).tolist() == [True] * 5 + [False]
    # Benjamini & Hochberg (1995), §3.2: 15 p-values, q = 0.05 → 4 rejections
    bh95 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459,
            0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0]  # fmt: skip
    perm = np.random.default_rng(0).permutation(15)
    rej = benjamini_hochberg(np.array(bh95)[perm], 0.05)
    assert sorted(np.array(bh95)[perm][rej].tolist()) == bh95[:4]
    # step-up: a p-value above its own threshold is rejected when a later one passes
    assert benjamini_hochberg([0.04, 0.041], 0.05).tolist() == [True, True]
    assert benjamini_hochberg([np.nan, 0.001], 0.05).tolist() == [False, True]


# ---------------------------------------------------------------------------------------------
# Person scores
# ---------------------------------------------------------------------------------------------


def test_person_scores_vote_matches_template_correct_per_person():
    rng = np.random.default_rng(4)
    n, n_t, n_c = 40, 5, 6
    m = rng.integers(1, 9, n)  # varying photo counts
    person_index = rng.permutation(np.repeat(np.arange(n), m))
    true = rng.integers(0, n_c, n)
    pred = rng.integers(0, n_c, (person_index.size, n_t)).astype(np.int32)
    hit = rng.random(pred.shape) < 0.4
    pred[hit] = true[person_index][:, None].repeat(n_t, 1)[hit]
    rank = rng.integers(0, n_c, pred.shape).astype(np.int32)
    margin = rng.normal(size=pred.shape).astype(np.float32)
    df = person_scores(pred, rank, margin, person_index, true, n)
    for i in range(n):
        own = person_index == i
        expected = int(template_correct(pred[own].T, true[i]).sum())
        assert df.loc[i, "vote_score"] == expected
        assert df.loc[i, "mean_rank"] == pytest.approx(rank[own].mean())
        assert df.loc[i, "mean_margin"] == pytest.approx(margin[own].mean(), rel=1e-5)
        assert df.loc[i, "n_photos"] == m[i]
    assert df["vote_score"].nunique() >= 3  # the case exercises wins, losses and ties


def test_person_scores_hand_case_and_empty_person():
    # person 0: template 0 → [1, 1, 2] correct; template 1 → [1, 2, 2] wrong (2 wins)
    # person 1: template 0 → [3] wrong; template 1 → [0] correct; person 2 has no photos
    pred = np.array([[1, 1], [1, 2], [2, 2], [3, 0]])
    rank = np.zeros_like(pred)
    margin = np.zeros(pred.shape, np.float32)
    df = person_scores(pred, rank, margin, np.array([0, 0, 0, 1]), np.array([1, 0, 5]), 3)
    assert df["vote_score"].tolist() == [1, 1, 0]
    assert np.isnan(df.loc[2, "mean_rank"])


def test_combined_score_keeps_vote_order_and_breaks_ties():
    c = combined_score(np.array([1, 1, 2, 0]), np.array([-0.2, 0.3, -5.0, 9.0]))
    assert np.argsort(c).tolist() == [3, 0, 1, 2]


def test_summarize_model_end_to_end():
    image, text, pi, true, decoy = _null_world(60, 200, m=4, n_t=3, d=32, seed=9)
    member = np.arange(60) < 30
    means = np.stack([image[pi == i].mean(axis=0) for i in range(30)])
    text[:, :30] = _unit(text[:, :30] + 4 * means[None])  # members are known
    from idia.attack import predict

    out = predict(image, text, true[pi])
    persons, summary = summarize_model(
        out["pred"], out["rank"], out["margin"], pi, true, member, image, text, decoy,
        tau=1, seed=0, n_boot=200,
    )  # fmt: skip
    assert len(persons) == 60
    assert persons.loc[:29, "bh_member"].all()
    # with 4 photos and 3 templates some members get no vote; the margin separates them all
    assert 0.8 < summary["vote"]["auc"] < summary["combined"]["auc"] == 1.0
    assert summary["combined"]["tpr_at_fpr_0.01"] == 1.0
    assert summary["combined"]["auc_lo"] <= summary["combined"]["auc"]
    t = summary["at_tau"]
    assert t["tp"] + t["fn"] == 30 and t["fp"] + t["tn"] == 30
    assert t["tpr_lo"] <= t["tpr"] <= t["tpr_hi"]
    assert summary["fpr_sentence"].startswith(f"{t['fp']} false positive")
    assert summary["nonmember_pvalues"]["n"] == 30


def test_tau_table_has_every_tau_with_exact_intervals():
    points = tau_table(np.array([0, 1, 2, 3]), np.array([False, False, True, True]), 4, ci=0.9)
    assert list(points["tau"]) == [1, 2, 3, 4]
    assert list(points["tp"]) == [2, 2, 1, 0] and list(points["fp"]) == [1, 0, 0, 0]
    lo, hi = clopper_pearson(np.array([2, 2, 1, 0]), np.array([2, 2, 2, 2]), 0.1)
    assert np.allclose(points["tpr_lo"], lo) and np.allclose(points["tpr_hi"], hi)
    assert (points["fpr_lo"] <= points["fpr"]).all() and (points["fpr"] <= points["fpr_hi"]).all()


def test_person_stats_reads_the_attack_outputs_and_writes_its_tables(tmp_path):
    """The job on a world where the first half is known: decoys are the candidates without a
    person id, the person table is sorted by combined score, the tau table spans every template."""
    import json

    import pandas as pd

    from idia.attack import predict

    image, text, pi, true, decoy = _null_world(10, 40, m=3, n_t=3, d=16, seed=4)
    means = np.stack([image[pi == i].mean(axis=0) for i in range(5)])
    text[:, :5] = _unit(text[:, :5] + 4 * means[None])
    out = predict(image, text, true[pi])
    np.savez(tmp_path / "pred.npz", person_index=pi, true_idx=true[pi], **out)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "text.npy", text)
    ids = [f"p{i}" for i in range(10)]
    pd.DataFrame({"person_index": pi, "person_id": np.array(ids)[pi]}).to_parquet(
        tmp_path / "photos.parquet"
    )
    pd.DataFrame({"person_id": ids + [None] * 40}).to_parquet(tmp_path / "candidates.parquet")
    pd.DataFrame(
        {"person_id": ids, "name": ids, "count": range(10, 0, -1),
         "member": [i < 5 for i in range(10)], "bin": "b"}
    ).to_parquet(tmp_path / "counts.parquet")  # fmt: skip
    summary = person_stats(
        model="m", predictions=tmp_path / "pred.npz", photos=tmp_path / "photos.parquet",
        candidates=tmp_path / "candidates.parquet", counts=tmp_path / "counts.parquet",
        image=tmp_path / "image.npy", text=tmp_path / "text.npy",
        persons_out=tmp_path / "persons.csv", taus_out=tmp_path / "taus.csv",
        summary_out=tmp_path / "summary.json", tau=1, seed=0, n_boot=50, q=0.05, ci=0.95,
        fpr_claim=0.01,
    )  # fmt: skip
    assert summary["model"] == "m" and summary["decoys"] == 40
    assert json.loads((tmp_path / "summary.json").read_text())["decoys"] == 40
    persons = pd.read_csv(tmp_path / "persons.csv")
    assert persons["combined_score"].is_monotonic_decreasing
    assert set(persons.loc[persons["is_member"], "person_id"]) == set(ids[:5])
    assert list(pd.read_csv(tmp_path / "taus.csv")["tau"]) == [1, 2, 3]
