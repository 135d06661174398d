"""Person-level statistics beyond the paper (DESIGN §2.2): scores, ROC, uncertainty, p-values.

The paper reports one operating point (``tau = 1``) as mean ± sd over photo draws. An audit needs
more: a continuous score per person (so ROC curves, AUC and TPR at low FPR exist), intervals that
reflect how few *identities* were audited (bootstrap over persons, Clopper–Pearson bounds), the
number of non-members a low-FPR claim needs, and a calibrated p-value per person with FDR control.
Everything works on the integer prediction arrays of :func:`idia.attack.predict` and on the
embeddings; nothing loops over persons or bootstrap replicates in Python (except in chunks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = [
    "auc",
    "benjamini_hochberg",
    "bootstrap",
    "clopper_pearson",
    "combined_score",
    "decoy_pvalues",
    "fpr_claim_sentence",
    "fpr_upper_bound",
    "nonmembers_needed",
    "operating_points",
    "person_scores",
    "person_stats",
    "roc_curve",
    "summarize_model",
    "tau_table",
    "tpr_at_fpr",
    "uniformity",
]


# --------------------------------------------------------------------------------------------
# Per-person scores over all photos
# --------------------------------------------------------------------------------------------


def person_scores(
    pred: np.ndarray,
    rank: np.ndarray,
    margin: np.ndarray,
    person_index: np.ndarray,
    true_of_person: np.ndarray,
    n_persons: int,
) -> pd.DataFrame:
    """Per person (index 0..n-1): ``vote_score``, ``mean_rank``, ``mean_margin``, ``n_photos``.

    ``vote_score`` counts the templates whose *unique* plurality prediction over all of the
    person's photos is the true name (the rule of :func:`idia.attack.template_correct`), so it
    is the paper's score at k = all photos. The rank and margin means run over photos × templates
    and break the ties of the integer vote. A person without photos gets vote 0 and NaN means.
    """
    pred = np.asarray(pred)
    rank = np.asarray(rank)
    margin = np.asarray(margin)
    person_index = np.asarray(person_index, dtype=np.int64)
    true_of_person = np.asarray(true_of_person, dtype=np.int64)
    if pred.ndim != 2 or rank.shape != pred.shape or margin.shape != pred.shape:
        raise ValueError(
            f"pred, rank and margin must all be [photos, templates], got {pred.shape}, "
            f"{rank.shape} and {margin.shape}"
        )
    n_photos, n_t = pred.shape
    if person_index.shape != (n_photos,):
        raise ValueError(f"person_index must have shape ({n_photos},), got {person_index.shape}")
    if true_of_person.shape != (n_persons,):
        raise ValueError(
            f"true_of_person must have one candidate index per person ({n_persons}), "
            f"got shape {true_of_person.shape}"
        )
    if n_photos and (person_index.min() < 0 or person_index.max() >= n_persons):
        raise ValueError(f"person_index must hold person indices 0..{n_persons - 1}")
    n_photo = np.bincount(person_index, minlength=n_persons)

    # Votes: count every (person, template, candidate) triple once with np.unique.
    n_c = int(max(pred.max(initial=0), true_of_person.max(initial=0))) + 1
    group = person_index[:, None] * n_t + np.arange(n_t)[None, :]  # [P, T] → (person, template)
    keys, counts = np.unique((group * n_c + pred).ravel(), return_counts=True)
    key_group, key_cand = np.divmod(keys, n_c)
    is_true = key_cand == true_of_person[key_group // n_t]
    n_true = np.zeros(n_persons * n_t, np.int64)
    n_true[key_group[is_true]] = counts[is_true]
    n_other = np.zeros(n_persons * n_t, np.int64)
    np.maximum.at(n_other, key_group[~is_true], counts[~is_true])
    correct = (n_true > n_other) & (n_true > 0)
    vote = correct.reshape(n_persons, n_t).sum(axis=1)

    denom = (n_photo * n_t).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rank_sum = np.bincount(person_index, rank.sum(axis=1, dtype=np.float64), n_persons)
        margin_sum = np.bincount(person_index, margin.sum(axis=1, dtype=np.float64), n_persons)
        mean_rank = np.where(denom > 0, rank_sum / denom, np.nan)
        mean_margin = np.where(denom > 0, margin_sum / denom, np.nan)
    return pd.DataFrame(
        {
            "n_photos": n_photo.astype(np.int64),
            "vote_score": vote.astype(np.int64),
            "mean_rank": mean_rank,
            "mean_margin": mean_margin,
        }
    )


def combined_score(vote_score: np.ndarray, mean_margin: np.ndarray) -> np.ndarray:
    """``vote_score + sigmoid(mean_margin)``: the vote, with ties broken by the margin.

    The sigmoid lies in (0, 1), so a person with more correct templates always ranks higher;
    among equal votes, the one whose true name wins by more (or loses by less) ranks higher.
    The ROC of this score refines the vote's ROC into many more thresholds.
    """
    m = np.asarray(mean_margin, dtype=np.float64)
    return np.asarray(vote_score, dtype=np.float64) + 1.0 / (1.0 + np.exp(-m))


# --------------------------------------------------------------------------------------------
# ROC
# --------------------------------------------------------------------------------------------


def _check_binary(scores, labels) -> tuple[np.ndarray, np.ndarray, int, int]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-d of equal length, got {s.shape}, {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; drop persons without photos before the ROC")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"an ROC needs members and non-members, got {n_pos} members and {n_neg} non-members"
        )
    return s, y, n_pos, n_neg


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for the rule ``score >= threshold`` → member.

    One point per distinct score (tied scores move together, in one step), from the empty call
    (threshold +inf, point (0, 0)) down to calling everyone (point (1, 1)).
    """
    s, y, n_pos, n_neg = _check_binary(scores, labels)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    tp = np.cumsum(y[order])
    fp = np.arange(1, s.size + 1) - tp
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s.size - 1]  # end of each tie block
    fpr = np.r_[0.0, fp[last] / n_neg]
    tpr = np.r_[0.0, tp[last] / n_pos]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thresholds


def auc(scores, labels) -> float:
    """Area under the ROC = P(member score > non-member score) + ½ P(tie) (Mann–Whitney)."""
    s, y, n_pos, n_neg = _check_binary(scores, labels)
    r = sps.rankdata(s)  # average ranks: a tie counts one half
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _allowed_fp(max_fpr: float, n_neg) -> np.ndarray:
    # The small epsilon keeps e.g. 0.01 * 300 = 3.0000000000000004 from losing a step.
    return np.floor(np.asarray(max_fpr) * np.asarray(n_neg) + 1e-9).astype(np.int64)


def tpr_at_fpr(scores, labels, max_fpr: float) -> float:
    """The largest TPR among the ROC's thresholds whose FPR is at most ``max_fpr``."""
    fpr, tpr, _ = roc_curve(scores, labels)
    n_neg = int((~np.asarray(labels, dtype=bool)).sum())
    ok = np.rint(fpr * n_neg) <= _allowed_fp(max_fpr, n_neg)
    return float(tpr[ok].max())


def operating_points(vote_score, labels, taus: Sequence[int] | None = None) -> pd.DataFrame:
    """Confusion counts and rates of the rule ``vote_score >= tau`` for each tau.

    ``taus`` defaults to 1..max(vote_score) (at least 1..1); pass ``range(1, T + 1)`` for all.
    """
    v = np.asarray(vote_score)
    y = np.asarray(labels, dtype=bool)
    if v.shape != y.shape or v.ndim != 1:
        raise ValueError(f"vote_score and labels must be 1-d of equal length: {v.shape}, {y.shape}")
    if taus is None:
        taus = range(1, max(int(v.max(initial=0)), 1) + 1)
    t = np.asarray(list(taus), dtype=np.int64)
    called = v[None, :] >= t[:, None]  # [n_tau, n]
    tp = (called & y).sum(axis=1)
    fp = (called & ~y).sum(axis=1)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / n_pos if n_pos else np.full(t.size, np.nan)
        fpr = fp / n_neg if n_neg else np.full(t.size, np.nan)
    return pd.DataFrame(
        {
            "tau": t,
            "tp": tp.astype(np.int64),
            "fn": (n_pos - tp).astype(np.int64),
            "fp": fp.astype(np.int64),
            "tn": (n_neg - fp).astype(np.int64),
            "tpr": np.asarray(tpr, dtype=np.float64),
            "fpr": np.asarray(fpr, dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------------------------
# Bootstrap over identities
# --------------------------------------------------------------------------------------------


def _auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC of each row: positives ``[B, n1]`` against negatives ``[B, n0]``."""
    n1, n0 = pos.shape[1], neg.shape[1]
    r = sps.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    return (r[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _tpr_at_fpr_rows(pos: np.ndarray, neg: np.ndarray, max_fpr: float) -> np.ndarray:
    """TPR at FPR ≤ ``max_fpr`` of each row, without building the ROC.

    With ``a`` false positives allowed, the best threshold lies just above the (a+1)-th largest
    negative score v: every positive strictly above v is caught, at most a negatives are.
    """
    n0 = neg.shape[1]
    a = int(_allowed_fp(max_fpr, n0))
    if a >= n0:
        return np.ones(pos.shape[0])
    v = -np.partition(-neg, a, axis=1)[:, a]  # (a+1)-th largest per row
    return (pos > v[:, None]).mean(axis=1)


def bootstrap(
    scores,
    labels,
    *,
    n_boot: int = 1000,
    seed: int,
    fpr_levels: Sequence[float] = (0.01, 0.001),
    ci: float = 0.95,
    chunk_elems: int = 1 << 22,
) -> dict:
    """Point estimates and percentile intervals of AUC and TPR at each FPR level.

    Identities, not photos, are the sampling unit: members and non-members are resampled with
    replacement *separately* (stratified), so every replicate keeps both classes at their
    observed sizes. Replicates are rows of an index matrix, processed in chunks; the same seed
    gives the same intervals.

    Returns a flat dict: ``auc``, ``auc_lo``, ``auc_hi``, and for each level ``x``
    ``tpr_at_fpr_x``, ``tpr_at_fpr_x_lo``, ``tpr_at_fpr_x_hi``, plus ``n_boot``, ``ci``,
    ``n_members``, ``n_nonmembers``.
    """
    s, y, n_pos, n_neg = _check_binary(scores, labels)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    pos, neg = s[y], s[~y]
    # One stream per class, consumed as doubles (64 bits each, no buffering), so that the
    # replicates do not depend on the chunk size.
    rng_pos, rng_neg = (
        np.random.default_rng(c) for c in np.random.SeedSequence(int(seed)).spawn(2)
    )
    levels = [float(x) for x in fpr_levels]
    boot_auc = np.empty(n_boot)
    boot_tpr = np.empty((len(levels), n_boot))
    step = max(1, chunk_elems // (n_pos + n_neg))
    for b in range(0, n_boot, step):
        nb = min(step, n_boot - b)
        p = pos[(rng_pos.random((nb, n_pos)) * n_pos).astype(np.int64)]
        q = neg[(rng_neg.random((nb, n_neg)) * n_neg).astype(np.int64)]
        boot_auc[b : b + nb] = _auc_rows(p, q)
        for i, lev in enumerate(levels):
            boot_tpr[i, b : b + nb] = _tpr_at_fpr_rows(p, q, lev)
    lo_q, hi_q = (1 - ci) / 2, 1 - (1 - ci) / 2
    out: dict = {"n_boot": int(n_boot), "ci": float(ci), "n_members": n_pos, "n_nonmembers": n_neg}
    out["auc"] = auc(s, y)
    out["auc_lo"], out["auc_hi"] = (float(x) for x in np.quantile(boot_auc, [lo_q, hi_q]))
    for i, lev in enumerate(levels):
        key = f"tpr_at_fpr_{lev:g}"
        out[key] = float(_tpr_at_fpr_rows(pos[None], neg[None], lev)[0])
        lo, hi = np.quantile(boot_tpr[i], [lo_q, hi_q])
        out[f"{key}_lo"], out[f"{key}_hi"] = float(lo), float(hi)
    return out


# --------------------------------------------------------------------------------------------
# Exact binomial bounds and how many non-members a claim needs
# --------------------------------------------------------------------------------------------


def clopper_pearson(k, n, alpha: float = 0.05) -> tuple:
    """Exact two-sided (1 − alpha) interval for a binomial proportion k / n.

    Vectorized over arrays of k and n; k = 0 gives lower bound 0 and k = n upper bound 1.
    n = 0 gives (0, 1): nothing is known. Scalars in, floats out.
    """
    k_arr = np.asarray(k, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k_arr > 0, sps.beta.ppf(alpha / 2, k_arr, n_arr - k_arr + 1), 0.0)
        hi = np.where(k_arr < n_arr, sps.beta.ppf(1 - alpha / 2, k_arr + 1, n_arr - k_arr), 1.0)
    lo = np.nan_to_num(lo, nan=0.0)
    hi = np.nan_to_num(hi, nan=1.0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def fpr_upper_bound(fp, n_nonmembers, confidence: float = 0.95):
    """One-sided exact upper bound on the FPR after ``fp`` false positives in ``n`` non-members."""
    return clopper_pearson(fp, n_nonmembers, alpha=2 * (1 - confidence))[1]


def nonmembers_needed(fpr_claim: float, confidence: float = 0.95) -> int:
    """Fewest non-members, all unflagged, whose one-sided upper FPR bound is ≤ ``fpr_claim``.

    With 0 false positives among n the exact bound solves (1 − p)^n = alpha, so
    n = ceil(log(alpha) / log(1 − fpr)) — about 3 / fpr at 95 % (the rule of three).
    """
    if not 0 < fpr_claim < 1:
        raise ValueError(f"fpr_claim must lie in (0, 1), got {fpr_claim}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    n = math.log(1 - confidence) / math.log1p(-fpr_claim)
    n_int = math.ceil(n - 1e-9)  # exact integers must not round up through float noise
    return max(1, n_int)


def _pct(x: float) -> str:
    return f"{100 * x:.2g}%" if x < 0.1 else f"{100 * x:.1f}%"


def fpr_claim_sentence(
    fp: int, n_nonmembers: int, confidence: float = 0.95, fpr_claim: float = 0.01
) -> str:
    """One sentence on what the observed false positives support, and what a claim needs."""
    fp, n = int(fp), int(n_nonmembers)
    conf = f"{100 * confidence:g}%"
    need = nonmembers_needed(fpr_claim, confidence)
    what = f"claiming FPR ≤ {_pct(fpr_claim)} needs ≥ {need} non-members with none flagged"
    if n == 0:
        return f"no non-members were audited, so nothing bounds the FPR; {what}"
    ub = fpr_upper_bound(fp, n, confidence)
    noun = "false positive" if fp == 1 else "false positives"
    observed = "" if fp == 0 else f" = {_pct(fp / n)} observed,"
    return (
        f"{fp} {noun} among {n} non-members: FPR{observed} ≤ {100 * ub:.1f}% "
        f"({conf} upper bound); {what}"
    )


# --------------------------------------------------------------------------------------------
# Per-person p-values against decoy names, and FDR control
# --------------------------------------------------------------------------------------------


def decoy_pvalues(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    person_index: np.ndarray,
    true_of_person: np.ndarray,
    decoy_mask: np.ndarray,
    *,
    chunk_elems: int = 1 << 24,
) -> np.ndarray:
    """p-value per person under H0 "the model does not know this person".

    Statistic: the mean cosine similarity of the person's photos, over all templates, to a
    name. Under H0 the true name is exchangeable with the decoy names (random filler names that
    no one in the study carries), so its rank among them is uniform and
    ``p = (1 + #{decoys d: s_d >= s_true}) / (1 + #decoys)`` is valid (P(p <= u) <= u). Pass
    only the filler names as decoys — other study identities may be known to the model — the
    person's own name is always excluded. A person without photos gets NaN.

    Why one matmul suffices: for photos x_1..x_m and template embeddings e_1c..e_Tc of name c,
    (1/(mT)) Σ_i Σ_t <x_i, e_tc> = <(1/m) Σ_i x_i, (1/T) Σ_t e_tc>, because the inner product
    is linear in each argument. So the mean similarity of every person to every name is
    (mean image embedding per person) @ (mean over templates of the text embedding)ᵀ. The means
    are deliberately *not* re-normalized: that would change the statistic.
    """
    img = np.asarray(image_emb, dtype=np.float64)
    txt = np.asarray(text_emb, dtype=np.float64)
    person_index = np.asarray(person_index, dtype=np.int64)
    true_of_person = np.asarray(true_of_person, dtype=np.int64)
    decoy = np.asarray(decoy_mask, dtype=bool)
    if img.ndim != 2 or txt.ndim != 3 or img.shape[1] != txt.shape[2]:
        raise ValueError(
            f"expected image_emb [P, D] and text_emb [T, C, D] with equal D, "
            f"got {img.shape} and {txt.shape}"
        )
    n_cand = txt.shape[1]
    n = true_of_person.shape[0]
    if decoy.shape != (n_cand,):
        raise ValueError(f"decoy_mask must have one entry per candidate ({n_cand}): {decoy.shape}")
    if person_index.shape != (img.shape[0],):
        raise ValueError(f"person_index must have one entry per photo ({img.shape[0]})")
    if img.shape[0] and (person_index.min() < 0 or person_index.max() >= n):
        raise ValueError(f"person_index must hold person indices 0..{n - 1}")
    if n and (true_of_person.min() < 0 or true_of_person.max() >= n_cand):
        raise ValueError(f"true_of_person must index the {n_cand} candidates")
    if not decoy.any():
        raise ValueError(
            "decoy_mask marks no candidate; the decoys are the random filler names "
            "(candidates with a null person_id)"
        )
    counts = np.bincount(person_index, minlength=n)
    mean_img = np.zeros((n, img.shape[1]))
    np.add.at(mean_img, person_index, img)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_img /= counts[:, None]
    mean_txt = txt.mean(axis=0)  # [C, D]
    s_true = np.einsum("nd,nd->n", mean_img, mean_txt[true_of_person])
    dec_txt = mean_txt[decoy]  # [Cd, D]
    own_is_decoy = decoy[true_of_person]
    own_col = np.where(own_is_decoy, np.cumsum(decoy)[true_of_person] - 1, -1)
    n_ge = np.empty(n, np.int64)
    step = max(1, chunk_elems // max(1, dec_txt.shape[0]))
    for s in range(0, n, step):
        sim = mean_img[s : s + step] @ dec_txt.T  # [p, Cd]
        # The person's own name, when marked a decoy, is never its own decoy.
        rows = np.flatnonzero(own_col[s : s + step] >= 0)
        sim[rows, own_col[s : s + step][rows]] = -np.inf
        n_ge[s : s + step] = (sim >= s_true[s : s + step, None]).sum(axis=1)
    n_dec = int(decoy.sum()) - own_is_decoy.astype(np.int64)
    p = (1.0 + n_ge) / (1.0 + n_dec)
    return np.where(counts > 0, p, np.nan)


def benjamini_hochberg(p, q: float = 0.05) -> np.ndarray:
    """Which hypotheses the Benjamini–Hochberg step-up procedure rejects at FDR level ``q``.

    Rejects the i smallest p-values for the largest i with p_(i) <= i q / m. NaN p-values are
    never rejected and do not count in m.
    """
    p = np.asarray(p, dtype=np.float64)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    out = np.zeros(p.shape, dtype=bool)
    if m == 0:
        return out
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(p[ok], kind="stable")]
    # The relative slack keeps float noise (0.06 * 5 / 6 < 0.05) from flipping exact ties.
    below = p[order] <= q * np.arange(1, m + 1) / m * (1 + 1e-12)
    if below.any():
        n_rej = int(np.flatnonzero(below).max()) + 1
        out[order[:n_rej]] = True
    return out


def uniformity(p) -> dict:
    """Kolmogorov–Smirnov test of p-values against U(0, 1): are they calibrated?

    Decoy p-values are discrete (steps of 1/(1 + #decoys)); with hundreds of decoys the KS test
    is barely affected.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[~np.isnan(p)]
    if p.size == 0:
        return {"ks_stat": float("nan"), "ks_pvalue": float("nan"), "n": 0}
    res = sps.kstest(p, "uniform")
    return {"ks_stat": float(res.statistic), "ks_pvalue": float(res.pvalue), "n": int(p.size)}


# --------------------------------------------------------------------------------------------
# Everything for one model
# --------------------------------------------------------------------------------------------


def summarize_model(
    pred: np.ndarray,
    rank: np.ndarray,
    margin: np.ndarray,
    person_index: np.ndarray,
    true_of_person: np.ndarray,
    is_member: np.ndarray,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    decoy_mask: np.ndarray,
    *,
    tau: int = 1,
    seed: int,
    n_boot: int = 1000,
    q: float = 0.05,
    fpr_levels: Sequence[float] = (0.01, 0.001),
    ci: float = 0.95,
    fpr_claim: float = 0.01,
) -> tuple[pd.DataFrame, dict]:
    """Person table and summary of one model's audit.

    Persons: ``n_photos``, ``is_member``, ``vote_score``, ``mean_rank``, ``mean_margin``,
    ``combined_score`` (see :func:`combined_score`), ``called`` (vote ≥ tau), ``p_value``
    (:func:`decoy_pvalues`) and ``bh_member`` (BH at ``q``). Summary: bootstrap AUC and TPR at
    each FPR level for ``vote`` and ``combined``; confusion at tau with Clopper–Pearson
    intervals; the FPR sentence; KS uniformity of the non-members' p-values. Persons without
    photos are left out of every statistic.
    """
    member = np.asarray(is_member, dtype=bool)
    n = member.shape[0]
    persons = person_scores(pred, rank, margin, person_index, true_of_person, n)
    persons.insert(1, "is_member", member)
    persons["combined_score"] = combined_score(persons["vote_score"], persons["mean_margin"])
    persons["called"] = persons["vote_score"].to_numpy() >= tau
    p = decoy_pvalues(image_emb, text_emb, person_index, true_of_person, decoy_mask)
    persons["p_value"] = p
    persons["bh_member"] = benjamini_hochberg(p, q)

    has = persons["n_photos"].to_numpy() > 0
    y = member[has]
    summary: dict = {
        "n_persons": int(has.sum()),
        "n_members": int(y.sum()),
        "n_nonmembers": int((~y).sum()),
        "tau": int(tau),
        "q": float(q),
        "seed": int(seed),
    }
    for name, col in (("vote", "vote_score"), ("combined", "combined_score")):
        b = bootstrap(
            persons[col].to_numpy()[has], y, n_boot=n_boot, seed=seed, fpr_levels=fpr_levels, ci=ci
        )
        for key in ("n_boot", "ci", "n_members", "n_nonmembers"):
            b.pop(key)
        summary[name] = b
    called = persons["called"].to_numpy()[has]
    tp, fp = int((called & y).sum()), int((called & ~y).sum())
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    alpha = 1 - ci
    tpr_lo, tpr_hi = clopper_pearson(tp, n_pos, alpha)
    fpr_lo, fpr_hi = clopper_pearson(fp, n_neg, alpha)
    summary["at_tau"] = {
        "tp": tp,
        "fn": n_pos - tp,
        "fp": fp,
        "tn": n_neg - fp,
        "tpr": tp / n_pos if n_pos else float("nan"),
        "tpr_lo": tpr_lo,
        "tpr_hi": tpr_hi,
        "fpr": fp / n_neg if n_neg else float("nan"),
        "fpr_lo": fpr_lo,
        "fpr_hi": fpr_hi,
    }
    summary["fpr_sentence"] = fpr_claim_sentence(fp, n_neg, ci, fpr_claim)
    summary["n_bh_members"] = int(persons["bh_member"].sum())
    summary["nonmember_pvalues"] = uniformity(persons["p_value"].to_numpy()[has & ~member])
    return persons, summary


def tau_table(vote_score, labels, n_templates: int, ci: float = 0.95) -> pd.DataFrame:
    """Every tau 1..``n_templates`` as an operating point with exact (Clopper–Pearson) ``ci``
    intervals on its TPR and FPR: the vote rule's whole trade-off in one table."""
    points = operating_points(vote_score, labels, range(1, n_templates + 1))
    alpha = 1 - ci
    for rate, hits, total in (
        ("tpr", points["tp"], points["tp"] + points["fn"]),
        ("fpr", points["fp"], points["fp"] + points["tn"]),
    ):
        lo, hi = clopper_pearson(hits.to_numpy(), total.to_numpy(), alpha)
        points[f"{rate}_lo"], points[f"{rate}_hi"] = lo, hi
    return points


def person_stats(
    *,
    model: str,
    predictions: str | Path,
    photos: str | Path,
    candidates: str | Path,
    counts: str | Path,
    image: str | Path,
    text: str | Path,
    persons_out: str | Path,
    taus_out: str | Path,
    summary_out: str | Path,
    tau: int,
    seed: int,
    n_boot: int,
    q: float,
    ci: float,
    fpr_claim: float,
) -> dict:
    """One model's person-level statistics from its attack outputs: the person table (csv, by
    combined score), every tau with exact intervals (csv) and the summary (json, returned).

    The p-values' decoys are the random filler names only: other study identities' names may be
    known to the model, which would break the exchangeability the p-value rests on.
    """
    from idia.attack import true_name_per_person
    from idia.smk import write_json

    pred = np.load(predictions)
    photo_table = pd.read_parquet(photos)
    decoy_mask = pd.read_parquet(candidates)["person_id"].isna().to_numpy()
    count_table = pd.read_parquet(counts).set_index("person_id")
    persons = photo_table.drop_duplicates("person_index").sort_values("person_index")
    table, summary = summarize_model(
        pred["pred"],
        pred["rank"],
        pred["margin"],
        pred["person_index"],
        true_name_per_person(pred["person_index"], pred["true_idx"]),
        count_table.loc[persons["person_id"], "member"].to_numpy(bool),
        np.load(image),
        np.load(text),
        decoy_mask,
        tau=tau,
        seed=seed,
        n_boot=n_boot,
        q=q,
        ci=ci,
        fpr_claim=fpr_claim,
    )
    meta = count_table.loc[persons["person_id"], ["name", "count", "bin"]].reset_index()
    table = pd.concat([meta, table.reset_index(drop=True)], axis=1)
    table = table.sort_values(["combined_score", "count"], ascending=False)
    table.to_csv(persons_out, index=False, float_format="%.6g")
    points = tau_table(
        table["vote_score"].to_numpy(), table["is_member"].to_numpy(), pred["pred"].shape[1], ci
    )
    points.to_csv(taus_out, index=False, float_format="%.4f")
    summary["model"] = model
    summary["decoys"] = int(decoy_mask.sum())
    write_json(summary_out, summary)
    vote = summary["vote"]
    print(
        f"{model}: AUC {vote['auc']:.3f} [{vote['auc_lo']:.3f}, {vote['auc_hi']:.3f}]; "
        f"{summary['fpr_sentence']}"
    )
    return summary
