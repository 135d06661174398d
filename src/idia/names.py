"""Names for the synthetic world and for the attack's candidate pool.

Names come from Faker's offline per-locale lists, so nothing here needs the network. Two names
count as the same when they match after case folding and accent stripping ("Zoé Müller" equals
"zoe muller"), because a text encoder and a caption search can hardly tell them apart.
"""

from __future__ import annotations

import csv
import importlib
import re
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np

DEFAULT_LOCALES = ["en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "en_IE"]

# One token of a name: letters (accented too), optionally joined by an apostrophe or a hyphen.
_TOKEN = re.compile(r"^[^\W\d_]+(?:['\-][^\W\d_]+)*$")


#: Fewer letters than this cannot name a person: ``!!!``, ``-`` or ``A`` would match a large share
#: of all captions and say nothing about anyone.
MIN_LETTERS = 2


def letters(name: object) -> int:
    """How many letters ``name`` has (a missing name has none)."""
    return sum(ch.isalpha() for ch in name) if isinstance(name, str) else 0


def usable_name(name: object) -> bool:
    """A name a caption search and the attack can use: at least :data:`MIN_LETTERS` letters."""
    return letters(name) >= MIN_LETTERS


def name_key(name: str) -> str:
    """Case- and accent-insensitive key of a name, used for every uniqueness check."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("\u2019", "'")
    return " ".join(stripped.casefold().split())


def _clean(values) -> list[str]:
    """Keep single-token names (hyphens and apostrophes allowed), in the provider's order."""
    out, seen = [], set()
    for value in values:
        value = str(value).strip().replace("\u2019", "'")
        if _TOKEN.match(value) and value not in seen:
            seen.add(value)
            out.append(value)
    return out


@cache
def _provider_lists(locale: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    try:
        module = importlib.import_module(f"faker.providers.person.{locale}")
    except ModuleNotFoundError as err:
        raise ValueError(f"Faker has no person provider for locale {locale!r}") from err
    provider = module.Provider
    generic = getattr(provider, "first_names", ())
    female = getattr(provider, "first_names_female", None) or generic
    male = getattr(provider, "first_names_male", None) or generic
    last = getattr(provider, "last_names", ())
    lists = (tuple(_clean(female)), tuple(_clean(male)), tuple(_clean(last)))
    if not all(lists):
        raise ValueError(f"Faker locale {locale!r} lacks first or last names")
    return lists


def faker_name_lists(locale: str = "en_US") -> tuple[list[str], list[str], list[str]]:
    """(first_female, first_male, surnames) from Faker's offline lists for one locale."""
    female, male, last = _provider_lists(locale)
    return list(female), list(male), list(last)


def _is_awkward(name: str) -> tuple[bool, bool, bool]:
    """(has accent, has apostrophe, has hyphen)."""
    return (name != name.encode("ascii", "ignore").decode(), "'" in name, "-" in name)


class _UniqueNames:
    """Set of names that also rejects names contained in one another.

    "Ann Lee" inside "Joann Lee" would make caption counts ambiguous, so containment (on keys,
    as whole strings) counts as a clash too.
    """

    def __init__(self, forbid_substrings: bool):
        self.keys: list[str] = []
        self.key_set: set[str] = set()
        self.forbid_substrings = forbid_substrings

    def add(self, name: str) -> bool:
        key = name_key(name)
        if key in self.key_set:
            return False
        if self.forbid_substrings and any(key in k or k in key for k in self.keys):
            return False
        self.keys.append(key)
        self.key_set.add(key)
        return True


def world_names(n: int, seed: int, locales: list[str] | None = None) -> list[tuple[str, str]]:
    """n unique (full name, gender) pairs, gender-balanced, mostly en_US with awkward spellings.

    Awkward names (accents, apostrophes, hyphens) are included on purpose so that every stage that
    handles names (captions, search, tokenization, file names) is exercised by them.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    locales = list(DEFAULT_LOCALES if locales is None else locales)
    if not locales:
        raise ValueError("locales must not be empty")
    rng = np.random.default_rng([seed, 7001])
    pools = {loc: _provider_lists(loc) for loc in locales}
    genders = ["female", "male"] * (n // 2 + 1)
    genders = [genders[i] for i in rng.permutation(n)] if n else []
    # Mostly en_US (when present); the rest spread over the other locales.
    main = "en_US" if "en_US" in locales else locales[0]
    others = [loc for loc in locales if loc != main] or [main]

    unique = _UniqueNames(forbid_substrings=True)
    names: list[tuple[str, str]] = []

    def draw(locale: str, gender: str) -> str:
        female, male, last = pools[locale]
        firsts = female if gender == "female" else male
        first, surname = firsts[rng.integers(len(firsts))], last[rng.integers(len(last))]
        return "" if name_key(first) == name_key(surname) else f"{first} {surname}"

    # First, one name of each awkward kind where the lists have one, so small worlds have them too.
    kinds_wanted = [0, 1, 2]
    for gender in genders:
        if not kinds_wanted:
            break
        kind = kinds_wanted[0]
        for _ in range(2000):
            locale = (
                others[rng.integers(len(others))]
                if kind != 1
                else locales[rng.integers(len(locales))]
            )
            name = draw(locale, gender)
            if name and _is_awkward(name)[kind] and unique.add(name):
                names.append((name, gender))
                break
        kinds_wanted.pop(0)
    for gender in genders[len(names) :]:
        for _ in range(10000):
            locale = main if rng.random() < 0.7 else others[rng.integers(len(others))]
            name = draw(locale, gender)
            if name and unique.add(name):
                names.append((name, gender))
                break
        else:
            raise ValueError(
                f"could not draw {n} distinct names from locales {locales}; "
                "add locales or ask for fewer identities"
            )
    order = rng.permutation(len(names))
    return [names[i] for i in order]


def candidate_pool(
    study_names: list[str],
    size: int,
    seed: int,
    first_female: list[str],
    first_male: list[str],
    surnames: list[str],
) -> list[str]:
    """Study names first (order kept), then random sex-balanced "First Last" fillers to `size`.

    The fillers are the decoys the attack must rank below the true name; they differ from each
    other and from every study name case- and accent-insensitively.
    """
    seen: dict[str, str] = {}
    duplicates = []
    for name in study_names:
        key = name_key(name)
        if key in seen:
            duplicates.append(f"{name!r} (same as {seen[key]!r})")
        else:
            seen[key] = name
    if duplicates:
        raise ValueError(f"study names contain duplicates: {', '.join(duplicates)}")
    if size < len(study_names):
        raise ValueError(
            f"candidate pool size {size} is smaller than the {len(study_names)} study names"
        )
    first_female, first_male, surnames = (
        [s.strip() for s in lst if s and s.strip()] for lst in (first_female, first_male, surnames)
    )
    n_fill = size - len(study_names)
    if n_fill and (not surnames or not (first_female or first_male)):
        raise ValueError("candidate pool needs first names and surnames to draw fillers from")
    rng = np.random.default_rng([seed, 7002])
    keys = set(seen)
    pool = list(study_names)
    max_tries = 50 * n_fill + 10000
    tries = 0
    while len(pool) < size:
        tries += 1
        if tries > max_tries:
            raise ValueError(
                f"could only draw {len(pool) - len(study_names)} of {n_fill} distinct filler "
                "names; supply longer name lists or a smaller pool size"
            )
        female_turn = (len(pool) - len(study_names)) % 2 == 0
        firsts = first_female if (female_turn and first_female) or not first_male else first_male
        name = f"{firsts[rng.integers(len(firsts))]} {surnames[rng.integers(len(surnames))]}"
        key = name_key(name)
        if key not in keys:
            keys.add(key)
            pool.append(name)
    return pool


def read_name_list(path: str | Path) -> list[str]:
    """Names from a user-supplied list: one per line, or a CSV whose first column is the name."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"name list {path} does not exist")
    text = path.read_text(encoding="utf-8-sig")
    names = []
    for row in csv.reader(text.splitlines()):
        if not row:
            continue
        name = row[0].strip()
        if name:
            names.append(name)
    if names and names[0].casefold() == "name":
        names = names[1:]
    if not names:
        raise ValueError(f"name list {path} contains no names")
    return names


def read_ssa_first_names(path: str | Path, top: int) -> tuple[list[str], list[str]]:
    """The ``top`` first names per sex of the SSA baby-name data, most popular first.

    Reads hadley/data-baby-names' ``baby-names.csv`` (``year,name,percent,sex``, sex ``boy`` /
    ``girl``, the top 1,000 per year and sex): a name's popularity is its percent summed over
    the years. Returns (female, male).
    """
    import pandas as pd

    path = Path(path)
    table = pd.read_csv(path)
    missing = {"name", "percent", "sex"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{path}: not the SSA baby-name format (year,name,percent,sex); "
            f"missing {sorted(missing)}"
        )
    lists = []
    for sex in ("girl", "boy"):
        rows = table[table["sex"] == sex]
        if rows.empty:
            raise ValueError(f"{path}: no names with sex {sex!r}")
        total = rows.groupby("name", sort=False)["percent"].sum()
        lists.append(list(total.sort_values(ascending=False, kind="stable").index[:top]))
    return lists[0], lists[1]


def read_census_surnames(path: str | Path, top: int) -> list[str]:
    """The first ``top`` surnames of the Census 2010 table, in title case (``O'Brien``).

    The published CSV has a header (``SURNAME,RANK,...``), numbers with thousands separators and
    three footer lines; rows whose RANK is not a number (the footer) are skipped.
    """
    path = Path(path)
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    if not rows or [c.strip().upper() for c in rows[0][:2]] != ["SURNAME", "RANK"]:
        raise ValueError(f"{path}: not the Census surname table (header SURNAME,RANK,...)")
    names = [
        r[0].strip().title()
        for r in rows[1:]
        if len(r) > 1 and r[0].strip() and r[1].replace(",", "").strip().isdigit()
    ]
    if not names:
        raise ValueError(f"{path}: no surnames")
    return names[:top]
