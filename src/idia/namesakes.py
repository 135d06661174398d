"""The namesake null: does the model know *this* name, or only a face and a name that looks right?

The decoy p-value of the audit (:func:`idia.stats.decoy_pvalues`) ranks the true name among
random "First Last" names. That tests "the model ties these photos to this name more than to an
arbitrary name", and a model can pass it for the wrong reason: it may tie the face to the
surname alone (a famous family name), to the first name, or to any name that looks like the
true one. The namesake test ranks the true name among its near-misses instead — the same first
name with other surnames, other first names with the same surname, and one-letter edits
("Jordan Piggott" vs "Jordan Pigott") — with the same statistic, so a model that knows only
part of the name, or only that the face is famous, does not pass it.

Both nulls are valid p-values under their own H0 (the true name is exchangeable with the
candidates it is ranked among); they answer different questions. The random-decoy null is
the right one to ask "was this person in the training data at all?" (the paper's membership
question); the namesake null is the right one to ask "does the model know the person by this
exact name?" — the claim an auditor makes when the model's answer is used as evidence about
a named individual, and the one to use when the surname or first name alone is famous.
"""

from __future__ import annotations

import hashlib
import itertools
import unicodedata
from collections.abc import Sequence

import numpy as np

from idia.attack import predict, template_correct
from idia.names import name_key
from idia.stats import decoy_pvalues

__all__ = [
    "DEFAULT_ALPHA",
    "KINDS",
    "check_alpha",
    "namesake_pool",
    "namesake_scores",
    "one_letter_edits",
    "split_name",
]

#: The kinds of namesake: same first name only, same surname only, one-letter edit.
KINDS = ("first", "surname", "edit")

#: The significance level at which the namesake test is called passed (``--alpha``).
DEFAULT_ALPHA = 0.05

#: The one-letter edits, in the order the edit namesakes take turns.
_OPERATIONS = ("deletion", "substitution", "transposition", "doubling")

_VOWELS = "aeiou"
_CONSONANTS = "bcdfghjklmnpqrstvwxyz"


def split_name(name: str) -> tuple[list[str], int, int] | None:
    """``(tokens, first, last)`` token indices of a name, or None for a single-token name.

    The first token is the first name, the last token the surname (a hyphenated surname
    ``Lee-Smith`` is one token); middle tokens are kept as they are in every namesake.
    """
    tokens = str(name).split()
    if len(tokens) < 2:
        return None
    return tokens, 0, len(tokens) - 1


def _base(ch: str) -> str:
    """The ASCII base letter of ``ch`` (``ë`` → ``e``), lowercase, or ``""`` for other scripts."""
    base = unicodedata.normalize("NFKD", ch)[:1].lower()
    return base if "a" <= base <= "z" else ""


def _substitutes(ch: str) -> str:
    """Letters that can replace ``ch`` and keep the name pronounceable (vowel for vowel)."""
    base = _base(ch)
    if not base:
        return ""
    group = _VOWELS if base in _VOWELS else _CONSONANTS
    subs = "".join(c for c in group if c != base)
    return subs.upper() if ch.isupper() else subs


def _token_edits(token: str) -> list[tuple[str, str]]:
    """``(edited token, operation)`` for every one-letter edit that still looks like a name.

    Only letters are edited (hyphens and apostrophes stay); the first letter is never doubled;
    an edited token keeps at least two letters, no letter three times in a row, and the
    capitalisation of the original positions (``Jordan`` → ``Ojrdan``, not ``oJrdan``).
    """
    chars = list(token)
    letters = [i for i, c in enumerate(chars) if c.isalpha()]
    upper = [c.isupper() for c in chars]
    out: list[tuple[str, str]] = []

    def recase(new: list[str], mask: list[bool]) -> str:
        return "".join(c.upper() if m else c.lower() for c, m in zip(new, mask))

    for i in letters:
        # deletion: the capital of a deleted first letter moves to the next letter
        mask = upper[:i] + upper[i + 1 :]
        if upper[i] and i < len(mask) and chars[i + 1].isalpha():
            mask[i] = True
        out.append((recase(chars[:i] + chars[i + 1 :], mask), "deletion"))
        # substitution
        out.extend((token[:i] + s + token[i + 1 :], "substitution") for s in _substitutes(chars[i]))
        # transposition with the next letter (case stays with the position)
        if (
            i + 1 < len(chars)
            and chars[i + 1].isalpha()
            and chars[i].lower() != chars[i + 1].lower()
        ):
            new = chars[:i] + [chars[i + 1], chars[i]] + chars[i + 2 :]
            out.append((recase(new, upper), "transposition"))
        # doubling (not of the first letter of a token part)
        if i > 0 and chars[i - 1].isalpha():
            out.append((token[: i + 1] + chars[i].lower() + token[i + 1 :], "doubling"))
    return [(t, op) for t, op in out if _looks_valid(t)]


def _looks_valid(token: str) -> bool:
    """At least two letters, a letter in every hyphen / apostrophe part, no triple letter."""
    parts = token.replace("'", "-").split("-")
    if sum(c.isalpha() for c in token) < 2 or not all(any(c.isalpha() for c in p) for p in parts):
        return False
    low = token.lower()
    return not any(low[i] == low[i + 1] == low[i + 2] for i in range(len(low) - 2))


def one_letter_edits(name: str) -> list[tuple[str, str]]:
    """Every valid-looking one-letter edit of ``name`` as ``(name, operation)``, deduplicated.

    Operations: ``deletion``, ``substitution``, ``transposition``, ``doubling``, each applied
    to one letter of one token. Edits equal to ``name`` up to case and accents are dropped.
    """
    tokens = str(name).split()
    seen = {name_key(name)}
    out = []
    for j, token in enumerate(tokens):
        for edited, op in _token_edits(token):
            cand = " ".join(tokens[:j] + [edited] + tokens[j + 1 :])
            key = name_key(cand)
            if key not in seen:
                seen.add(key)
                out.append((cand, op))
    return out


def _same_sex_firsts(
    first: str, first_female: Sequence[str], first_male: Sequence[str]
) -> list[str]:
    """First names of the true first name's sex when the lists tell it, else both lists.

    A model that sees a woman's face may rank men's names low whether or not it knows her; with
    other-sex first names among the namesakes the true name would gain rank from sex alone.
    """
    key = name_key(first)
    in_f = any(name_key(n) == key for n in first_female)
    in_m = any(name_key(n) == key for n in first_male)
    if in_f and not in_m:
        return list(first_female)
    if in_m and not in_f:
        return list(first_male)
    return list(first_female) + list(first_male)


def _shuffled(items: list[str], rng: np.random.Generator) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def namesake_pool(
    name: str,
    n: int,
    seed: int,
    first_female: Sequence[str],
    first_male: Sequence[str],
    surnames: Sequence[str],
    *,
    allow_fewer: bool = False,
) -> tuple[list[str], list[str]]:
    """``n`` namesakes of ``name`` and their kinds (``first``, ``surname`` or ``edit``).

    About a third of each kind: the first name with other surnames, other first names (of the
    same sex when the lists tell) with the surname, and one-letter edits; a kind that runs out
    is filled with the others. A single-token name (``Madonna``) has no first name or surname
    to keep, so all its namesakes are edits. Every namesake differs from ``name`` and from
    every other namesake case- and accent-insensitively; the same arguments give the same list.
    Raises ValueError naming the person when fewer than ``n`` namesakes exist, unless
    ``allow_fewer`` (then all there are: a short single-token name has few one-letter edits).
    """
    if n < 1:
        raise ValueError(f"the number of namesakes must be >= 1, got {n}")
    # the name enters the seed, so that two persons audited with one seed get other namesakes
    digest = int.from_bytes(hashlib.sha256(name_key(name).encode("utf-8")).digest()[:4], "big")
    rng = np.random.default_rng([seed, 7004, digest])
    seen = {name_key(name)}
    split = split_name(name)
    sources: dict[str, list[str]] = {}
    if split is not None:
        tokens, fi, li = split
        firsts = _same_sex_firsts(tokens[fi], first_female, first_male)
        sources["first"] = _shuffled(
            [" ".join(tokens[:li] + [s.strip()]) for s in surnames if s and s.strip()], rng
        )
        sources["surname"] = _shuffled(
            [" ".join([f.strip()] + tokens[fi + 1 :]) for f in firsts if f and f.strip()], rng
        )
    # the edits in turns of operation, so that substitutions (the most) do not crowd out the rest
    by_op = {op: [e for e, o in one_letter_edits(name) if o == op] for op in _OPERATIONS}
    rounds = [_shuffled(by_op[op], rng) for op in _OPERATIONS]
    sources["edit"] = [e for turn in itertools.zip_longest(*rounds) for e in turn if e]
    queues = {kind: list(reversed(names)) for kind, names in sources.items()}  # pop() = next
    picked: list[str] = []
    kinds: list[str] = []
    active = [k for k in KINDS if k in queues]
    while len(picked) < n and active:
        for kind in list(active):
            if len(picked) >= n:
                break
            queue = queues[kind]
            while queue:
                cand = queue.pop()
                key = name_key(cand)
                if key not in seen:
                    seen.add(key)
                    picked.append(cand)
                    kinds.append(kind)
                    break
            else:
                active.remove(kind)
    if len(picked) < n and not allow_fewer:
        raise ValueError(
            f"only {len(picked)} distinct namesakes exist for {name!r} with these name lists "
            f"({n} asked); ask for fewer namesakes (--namesakes) or supply longer name lists"
        )
    return picked, kinds


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float strictly between 0 and 1, or ValueError saying the valid range."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(
            f"alpha (the namesake test's significance level) must be a number between 0 and 1, "
            f"got {alpha!r}; 0.05 is the usual choice"
        )
    return float(alpha)


def namesake_scores(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    kinds: Sequence[str],
    alpha: float = DEFAULT_ALPHA,
) -> dict:
    """The namesake test from embeddings: p-value, pass/fail at ``alpha``, vote score and what
    the model picks.

    ``text_emb`` is ``[T, N + 1, D]``: the ``N`` namesakes (of ``kinds``) and then the true
    name *last*, where the first-index tie rule of the argmax cannot favour it. The p-value is
    the decoy p-value of :func:`idia.stats.decoy_pvalues` with the namesakes as decoys, valid
    under H0 "the model does not know this exact name" (the true name is then exchangeable
    with its namesakes). ``pick_shares`` splits the photo × template predictions into the
    true name and the namesake kinds: a high ``surname`` share means the model ties the face
    to the family name, not to the person. ``passed`` is the test's answer: the p-value is at
    most ``alpha``, so the model ties the photos to this exact name more than to its namesakes.
    """
    alpha = check_alpha(alpha)
    img = np.asarray(image_emb, dtype=np.float32)
    txt = np.asarray(text_emb, dtype=np.float32)
    kinds = list(kinds)
    n_cands = txt.shape[1]
    if n_cands != len(kinds) + 1:
        raise ValueError(
            f"text_emb holds {n_cands} names but {len(kinds)} namesake kinds were given; "
            "pass the namesakes' kinds and put the true name last"
        )
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise ValueError(f"unknown namesake kind(s) {bad}; expected {list(KINDS)}")
    true = n_cands - 1
    n_photos = img.shape[0]
    out = predict(img, txt, np.full(n_photos, true))
    pred, rank = out["pred"], out["rank"]
    decoys = np.ones(n_cands, bool)
    decoys[true] = False
    p = float(decoy_pvalues(img, txt, np.zeros(n_photos, np.int64), np.array([true]), decoys)[0])
    label = np.array([*kinds, "true"])
    picked = label[pred]
    shares = {k: float((picked == k).mean()) for k in ("true", *KINDS)}
    return {
        "n": len(kinds),
        "n_templates": int(txt.shape[0]),
        "counts": {k: kinds.count(k) for k in KINDS},
        "p_value": p,
        "alpha": alpha,
        "passed": bool(p <= alpha),
        "vote_score": int(template_correct(pred.T, true).sum()),
        "top1_rate": shares["true"],
        "mean_rank": float(rank.mean()),
        "pick_shares": shares,
    }
