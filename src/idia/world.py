"""The embedded synthetic world: identities, a web corpus and a base corpus, published the way
the paper's public sources publish theirs.

The world is a stand-in for the internet. Its identities are listed in FaceScrub's format (URLs,
face boxes, sha256) plus per-person URL lists; its web corpus is LAION-format metadata (one
parquet per shard) over served images; its base corpus for track C is a header-less CC3M-format
TSV (and its held-out validation TSV, for the utility table); its candidate names come in the
SSA baby-name and Census surname formats. Everything under
``web/`` is served at ``http://{WORLD_HOST}/`` (and the base corpus at ``http://{BASE_HOST}/``) by
:mod:`idia.worldweb`, so the default run executes exactly the acquisition rules of the paper.
Members appear in the captions under their names; non-members never do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from idia.facescrub import HEADER, person_id
from idia.names import faker_name_lists, name_key, world_names
from idia.render import (
    CITIES,
    SCENE_SHAPES,
    FaceParams,
    render_face,
    render_face_box,
    render_scene,
    sample_identity,
    write_jpeg,
)

WORLD_HOST = "idia-world.test"
BASE_HOST = "cc3m.idia-world.test"
LAION_COLUMNS = ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW", "similarity"]
DEFAULT_FAULTS = {"dead_urls": 2, "bad_hashes": 2, "bad_boxes": 2, "malformed_lines": 1,
                  "sparse_identities": 1}  # fmt: skip
# One FaceScrub list line: name, image id, face id, url, box (x1, y1, x2, y2), sha256.
_FaceLine = tuple[str, str, str, str, tuple[int, int, int, int], str]


def _write_parquet(table: dict, path: Path) -> None:
    pq.write_table(pa.table(table), path, compression="zstd")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checksums(path: Path, files: list[Path]) -> None:
    """A ``sha256sum``-format file over ``files`` (by file name): the pins of the sources."""
    lines = [f"{_sha256(f)}  {f.name}" for f in sorted(files, key=lambda f: f.name)]
    path.write_text("\n".join(lines) + "\n")


def write_name_lists(folder: Path, seed: int) -> list[Path]:
    """The candidate names in their public formats: SSA baby names (hadley/data-baby-names'
    ``baby-names.csv``: year,name,percent,sex) and the Census 2010 surname table (thousands
    separators, three footer lines), from Faker's offline en_US lists in their order."""
    folder.mkdir(parents=True, exist_ok=True)
    female, male, last = faker_name_lists("en_US")
    first = folder / "baby-names.csv"
    with open(first, "w", newline="") as handle:
        out = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
        out.writerow(["year", "name", "percent", "sex"])
        for sex, names in (("boy", male), ("girl", female)):
            for rank, name in enumerate(names):
                out.writerow([2008, name, round(0.05 / (rank + 1), 6), sex])
    surnames = folder / "census_surnames.csv"
    with open(surnames, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["SURNAME", "RANK", "FREQUENCY (COUNT)", "PROPORTION PER 100,000 POPULATION"])
        for rank, name in enumerate(last, 1):
            count = 2_500_000 // rank
            out.writerow([name.upper(), f"{rank:,}", f"{count:,}", f"{count / 3087.0:.1f}"])
        out.writerow([""] * 4)
        out.writerow(["Source: U.S. Census Bureau, 2010 Census.", "", "", ""])
        out.writerow(["Note: Fields suppressed for confidentiality are assigned the value (S).",
                      "", "", ""])  # fmt: skip
    return [first, surnames]


def list_file_name(name: str) -> str:
    """``<First_Last>.txt``, the per-person URL list's file name."""
    return name.replace(" ", "_") + ".txt"


def occurrence_counts(n_members: int, lo: int, hi: int) -> np.ndarray:
    """Log-evenly spaced counts from lo to hi: every region of the range is populated."""
    if n_members == 0:
        return np.zeros(0, np.int64)
    if n_members == 1:
        return np.array([round(math.sqrt(lo * hi))], np.int64)
    grid = np.exp(np.linspace(math.log(lo), math.log(hi), n_members))
    return np.clip(np.round(grid), lo, hi).astype(np.int64)


def _choose_members(genders: list[str], n_members: int, seed: int) -> np.ndarray:
    """Indices of members: a seeded shuffle, interleaved by gender so members are balanced."""
    order = np.random.default_rng([seed, 11]).permutation(len(genders))
    female = [int(i) for i in order if genders[i] == "female"]
    male = [int(i) for i in order if genders[i] != "female"]
    interleaved = []
    first, second = (female, male) if (seed % 2 == 0) else (male, female)
    for k in range(max(len(female), len(male))):
        if k < len(first):
            interleaved.append(first[k])
        if k < len(second):
            interleaved.append(second[k])
    return np.array(interleaved[:n_members], dtype=np.int64)


def _validate(
    n_identities, n_members, attack_photos, occurrences, n_generic, image_size, n_broken_urls,
    n_shards, caption_templates,
) -> None:  # fmt: skip
    if n_identities < 1:
        raise ValueError(f"n_identities must be >= 1, got {n_identities}")
    if not 0 <= n_members <= n_identities:
        raise ValueError(
            f"n_members must be between 0 and n_identities={n_identities}, got {n_members}"
        )
    if attack_photos < 1:
        raise ValueError(f"attack_photos must be >= 1, got {attack_photos}")
    if not isinstance(occurrences, dict) or set(occurrences) != {"min", "max"}:
        raise ValueError(
            f"occurrences must be a dict with keys 'min' and 'max', got {occurrences!r}"
        )
    lo, hi = occurrences["min"], occurrences["max"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        raise ValueError(f"occurrences needs integers 1 <= min <= max, got min={lo}, max={hi}")
    if n_generic < 0 or n_broken_urls < 0:
        raise ValueError("n_generic and n_broken_urls must be >= 0")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32 for faces to be detectable, got {image_size}")
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    if not caption_templates:
        raise ValueError("caption_templates must not be empty")
    for template in caption_templates:
        if "{name}" not in template:
            raise ValueError(f"caption template {template!r} lacks '{{name}}'")
        try:
            template.format(name="X", city="Y")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"caption template {template!r} may only use {{name}} and {{city}}: {err}"
            ) from err


def _check_captions(captions: list[str], owners: list[int], names: list[str], members) -> None:
    """Each name occurs exactly in its own pairs; non-members occur nowhere."""
    keys = [name_key(n) for n in names]
    member_set = {int(m) for m in members}
    for caption, owner in zip(captions, owners):
        ckey = name_key(caption)
        for i, key in enumerate(keys):
            if key in ckey and i != owner:
                kind = "non-member" if i not in member_set else "member"
                raise AssertionError(
                    f"{kind} name {names[i]!r} appears in caption {caption!r} of another pair"
                )


def study_identities(
    seed: int, n_identities: int
) -> tuple[list[str], list[str], list[str], list[FaceParams]]:
    """The world's identities: person ids, names, genders and fixed face parameters."""
    names_genders = world_names(n_identities, seed)
    names = [n for n, _ in names_genders]
    genders = [g for _, g in names_genders]
    person_ids = [person_id(name) for name in names]
    params = [
        sample_identity(np.random.default_rng([seed, 1, i]), genders[i])
        for i in range(n_identities)
    ]
    return person_ids, names, genders, params


def build_world(
    outdir: Path,
    *,
    seed: int,
    n_identities: int,
    n_members: int,
    attack_photos: int,
    occurrences: dict,
    n_generic: int,
    image_size: int,
    n_broken_urls: int,
    n_shards: int,
    caption_templates: list[str],
    url_list_identities: int = 2,
    faults: dict | None = None,
) -> dict:
    """Publish the world's identities, its web corpus and its name lists under ``outdir``.

    - ``facescrub/facescrub_{actors,actresses}.txt``: FaceScrub-format lists of every identity's
      photos (served under ``web/faces/``) with the rendered face's box and the bytes' sha256;
      ``faults`` adds what the real lists hold too: dead URLs, wrong hashes, boxes outside the
      image, a malformed line and people with too few photos (not study identities).
    - ``extra/{actors,actresses}/<First_Last>.txt``: ``url_list_identities`` study identities
      listed instead as per-person URL lists, as the paper's extra celebrities.
    - ``web/laion/part-NNNNN.parquet``: LAION-400M-format metadata (SAMPLE_ID, URL, TEXT, ...)
      of the web corpus, images under ``web/laion/img/``, ``n_broken_urls`` of them dead.
    - ``web/names/``: the candidate name lists in the SSA and Census formats.
    - ``web.sha256``: the pins of the published metadata files; ``truth.parquet`` and
      ``world.json``: what the workflow must find.
    """
    _validate(
        n_identities, n_members, attack_photos, occurrences, n_generic, image_size,
        n_broken_urls, n_shards, caption_templates,
    )  # fmt: skip
    faults = {**DEFAULT_FAULTS, **(faults or {})}
    if not 0 <= url_list_identities <= n_identities:
        raise ValueError(f"url_list_identities must be between 0 and {n_identities}")
    if any(v < 0 for v in faults.values()):
        raise ValueError(f"world.faults must be >= 0, got {faults}")
    outdir = Path(outdir)
    person_ids, names, genders, params = study_identities(seed, n_identities)
    members = _choose_members(genders, n_members, seed)
    counts = occurrence_counts(n_members, occurrences["min"], occurrences["max"])
    counts = counts[np.random.default_rng([seed, 12]).permutation(n_members)]
    occ = np.zeros(n_identities, np.int64)
    occ[members] = counts
    is_member = np.zeros(n_identities, bool)
    is_member[members] = True

    # Corpus rows before shuffling: (kind, owner, index, caption).
    rows: list[tuple[str, int, int, str]] = []
    for i in range(n_identities):
        for j in range(int(occ[i])):
            crng = np.random.default_rng([seed, 7, i, j])
            template = caption_templates[int(crng.integers(len(caption_templates)))]
            city = CITIES[int(crng.integers(len(CITIES)))]
            rows.append(("named", i, j, template.format(name=names[i], city=city)))
    for k in range(n_generic):
        rows.append(("generic", -1, k, ""))
    for k in range(n_broken_urls):
        _, caption = render_scene(np.random.default_rng([seed, 5, k]), 32)
        rows.append(("broken", -1, k, caption))
    n_named = int(occ.sum())

    web = outdir / "web"
    face_dir, image_dir, laion_dir = web / "faces", web / "laion" / "img", web / "laion"
    list_dir, extra_dir = outdir / "facescrub", outdir / "extra"
    for d in (face_dir, image_dir, list_dir, extra_dir / "actors", extra_dir / "actresses"):
        d.mkdir(parents=True, exist_ok=True)
    for old in [*laion_dir.glob("part-*.parquet"), *extra_dir.glob("*/*.txt")]:
        old.unlink()

    listed_by_urls = set(
        np.random.default_rng([seed, 40]).permutation(n_identities)[:url_list_identities].tolist()
    )
    fault_rng = np.random.default_rng([seed, 41])
    in_lists = [i for i in range(n_identities) if i not in listed_by_urls]
    fault_owner = {
        kind: [in_lists[int(v)] for v in fault_rng.integers(len(in_lists), size=faults[kind])]
        if in_lists else []
        for kind in ("dead_urls", "bad_hashes", "bad_boxes")
    }  # fmt: skip
    lines: dict[str, list[_FaceLine]] = {"male": [], "female": []}

    def face_url(pid: str, stem: str) -> str:
        return f"http://{WORLD_HOST}/faces/{pid}/{stem}.jpg"

    def publish_face(i: int, stem: str, rng: np.random.Generator) -> tuple[str, tuple, str]:
        img, box = render_face_box(params[i], rng, image_size)
        path = face_dir / person_ids[i] / f"{stem}.jpg"
        path.parent.mkdir(exist_ok=True)
        write_jpeg(path, img)
        return face_url(person_ids[i], stem), box, _sha256(path)

    total = n_identities * attack_photos + n_named + n_generic
    order = np.random.default_rng([seed, 6]).permutation(len(rows))
    key_width = max(6, len(str(len(rows) - 1)))
    keys, captions, owners = [], [], []
    with tqdm(total=total, desc="world", unit="img", file=sys.stderr, mininterval=2) as bar:
        for i in range(n_identities):
            urls = []
            for j in range(attack_photos):
                url, box, sha = publish_face(i, f"{j:03d}", np.random.default_rng([seed, 2, i, j]))
                urls.append(url)
                lines[genders[i]].append((names[i], str(j), str(j), url, box, sha))
            bar.update(attack_photos)
            if i in listed_by_urls:
                folder = extra_dir / ("actresses" if genders[i] == "female" else "actors")
                (folder / list_file_name(names[i])).write_text("\n".join(urls) + "\n")
                del lines[genders[i]][-attack_photos:]
        for kind, owner_list in fault_owner.items():
            for k, i in enumerate(owner_list):
                stem = f"{kind}-{k}"
                if kind == "dead_urls":
                    url, box, sha = face_url(person_ids[i], stem), (0, 0, 8, 8), "0" * 64
                else:
                    url, box, sha = publish_face(i, stem, np.random.default_rng([seed, 42, i, k]))
                    if kind == "bad_hashes":
                        sha = hashlib.sha256(sha.encode()).hexdigest()
                    else:
                        box = (box[0], box[1], image_size + 8, image_size + 8)
                lines[genders[i]].append((names[i], f"9{k}", f"9{k}", url, box, sha))
        sparse = _sparse_names(names, faults["sparse_identities"], seed)
        for k, name in enumerate(sparse):
            face = sample_identity(np.random.default_rng([seed, 43, k]), "female")
            for j in range(2):
                rng = np.random.default_rng([seed, 44, k, j])
                img, box = render_face_box(face, rng, image_size)
                path = face_dir / f"sparse-{k}" / f"{j:03d}.jpg"
                path.parent.mkdir(exist_ok=True)
                write_jpeg(path, img)
                url = f"http://{WORLD_HOST}/faces/sparse-{k}/{j:03d}.jpg"
                lines["female"].append((name, str(j), str(j), url, box, _sha256(path)))
        for pos, r in enumerate(order):
            kind, owner, idx, caption = rows[r]
            key = f"{pos:0{key_width}d}"
            if kind == "named":
                img = render_face(
                    params[owner], np.random.default_rng([seed, 3, owner, idx]), image_size
                )
                write_jpeg(image_dir / f"{key}.jpg", img)
                bar.update(1)
            elif kind == "generic":
                img, caption = render_scene(np.random.default_rng([seed, 4, idx]), image_size)
                write_jpeg(image_dir / f"{key}.jpg", img)
                bar.update(1)
            else:
                stale = image_dir / f"{key}.jpg"
                if stale.exists():
                    stale.unlink()
            keys.append(key)
            captions.append(caption)
            owners.append(owner)

    _check_captions(captions, owners, names, members)
    malformed = faults["malformed_lines"]
    for gender, file_name in (("male", "facescrub_actors.txt"),
                              ("female", "facescrub_actresses.txt")):  # fmt: skip
        out = io.StringIO()
        out.write("\t".join(HEADER) + "\n")
        for name, image_id, face_id, url, box, sha in lines[gender]:
            out.write(f"{name}\t{image_id}\t{face_id}\t{url}\t{','.join(map(str, box))}\t{sha}\n")
        for k in range(malformed if gender == "male" else 0):
            out.write(f"{names[0]}\t8{k}\thttp://{WORLD_HOST}/faces/truncated-{k}.jpg\n")
        (list_dir / file_name).write_text(out.getvalue())

    if n_shards > len(keys):
        raise ValueError(f"n_shards={n_shards} exceeds the {len(keys)} corpus rows")
    sim_rng = np.random.default_rng([seed, 45])
    bounds = np.linspace(0, len(keys), n_shards + 1).round().astype(int)
    published = []
    for s, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        n = end - start
        path = laion_dir / f"part-{s:05d}.parquet"
        _write_parquet(
            {
                "SAMPLE_ID": pa.array([int(k) for k in keys[start:end]], pa.int64()),
                "URL": [f"http://{WORLD_HOST}/laion/img/{k}.jpg" for k in keys[start:end]],
                "TEXT": captions[start:end],
                "HEIGHT": pa.array([image_size] * n, pa.int64()),
                "WIDTH": pa.array([image_size] * n, pa.int64()),
                "LICENSE": ["?"] * n,
                "NSFW": ["UNLIKELY"] * n,
                "similarity": pa.array(sim_rng.uniform(0.3, 0.45, n), pa.float32()),
            },
            path,
        )
        published.append(path)
    published += write_name_lists(web / "names", seed)
    write_checksums(outdir / "web.sha256", published)
    _write_parquet(
        {
            "person_id": person_ids,
            "name": names,
            "member": pa.array(is_member.tolist(), pa.bool_()),
            "occurrences": pa.array(occ.tolist(), pa.int64()),
            "listed_in": [
                "extra" if i in listed_by_urls else "facescrub" for i in range(n_identities)
            ],
        },
        outdir / "truth.parquet",
    )
    summary = {
        "parameters": {
            "seed": seed,
            "n_identities": n_identities,
            "n_members": n_members,
            "attack_photos": attack_photos,
            "occurrences": {"min": occurrences["min"], "max": occurrences["max"]},
            "n_generic": n_generic,
            "image_size": image_size,
            "n_broken_urls": n_broken_urls,
            "n_shards": n_shards,
            "caption_templates": list(caption_templates),
            "url_list_identities": url_list_identities,
            "faults": faults,
        },
        "counts": {
            "identities": n_identities,
            "members": int(is_member.sum()),
            "non_members": int((~is_member).sum()),
            "corpus_pairs": len(keys),
            "named_pairs": n_named,
            "generic_pairs": n_generic,
            "broken_urls": n_broken_urls,
            "shards": n_shards,
            "attack_photos": n_identities * attack_photos,
            "listed_by_urls": len(listed_by_urls),
            "sparse_identities": sparse,
        },
    }
    (outdir / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _sparse_names(names: list[str], n: int, seed: int) -> list[str]:
    """Names for people listed with too few photos: not study identities, never in a caption."""
    female, _, last = faker_name_lists("en_US")
    rng = np.random.default_rng([seed, 46])
    taken = {name_key(x) for x in names}
    out: list[str] = []
    while len(out) < n:
        name = f"{female[int(rng.integers(len(female)))]} {last[int(rng.integers(len(last)))]}"
        if name_key(name) not in taken:
            taken.add(name_key(name))
            out.append(name)
    return out


HYPERNYMS = [
    "an actor", "an actress", "a singer", "a person", "a musician", "an athlete", "a politician",
    "a celebrity", "a presenter", "a writer",
]  # fmt: skip
HYPERNYM_SCENES = [
    "{who} at the premiere", "portrait of {who}", "{who} smiling for the camera",
    "{who} during an interview", "close-up of {who}", "{who} arrives at the awards in {city}",
    "{who} in {city}",
]  # fmt: skip


def _validate_base(n_generic, n_extras, extra_photos, n_planted, planted_photos, n_identities,
                   eval_per_class, n_eval_pairs) -> None:  # fmt: skip
    counts = {
        "n_generic": n_generic, "n_extras": n_extras, "extra_photos": extra_photos,
        "n_planted": n_planted, "planted_photos": planted_photos, "eval_per_class": eval_per_class,
        "n_eval_pairs": n_eval_pairs,
    }  # fmt: skip
    negative = [key for key, value in counts.items() if value < 0]
    if negative:
        raise ValueError(f"world.base: {negative} must be >= 0")
    if n_planted > n_identities:
        raise ValueError(
            f"world.base.n_planted={n_planted} exceeds the {n_identities} identities of the world"
        )


def build_base(
    outdir: Path,
    *,
    seed: int,
    n_identities: int,
    image_size: int,
    caption_templates: list[str],
    n_generic: int,
    n_extras: int,
    extra_photos: int,
    n_planted: int,
    planted_photos: int,
    eval_per_class: int,
    n_eval_pairs: int,
) -> dict:
    """The controlled-injection side of the world (track C), written to ``outdir``.

    - ``web/cc3m/Train_GCC-training.tsv`` (CC3M's format: caption, tab, URL; no header) over the
      images in ``web/img/``, served at ``http://{BASE_HOST}/``: an anonymized base corpus:
      generic scenes, people who are not study identities, and ``n_planted`` study identities,
      all captioned with hypernyms ("an actor ..."), never with a name. The planted identities
      are what the face filter must find and exclude.
    - ``web/cc3m/Validation_GCC-1.1.0-Validation.tsv`` (the same format) over ``web/val/``:
      ``n_eval_pairs`` held-out scene pairs for the utility's image-to-text retrieval, acquired
      by the workflow like CC3M's validation file.
    - ``eval/classes/<shape>/``: a labelled evaluation set for zero-shot utility (one shape per
      image, ImageNet-folder layout; the shape names are the class names).
    - ``truth.parquet``: which identities are planted and with how many photos.
    - ``planted.parquet``: which base images show which planted identity (``file``, the name
      ending the image's URL in the TSV, and ``person_id``; sorted by file), so that an audit
      of the face filter reads the ground truth instead of replaying this function's draws.
    """
    _validate_base(
        n_generic, n_extras, extra_photos, n_planted, planted_photos, n_identities,
        eval_per_class, n_eval_pairs,
    )  # fmt: skip
    outdir = Path(outdir)
    person_ids, names, _, params = study_identities(seed, n_identities)
    planted = np.sort(np.random.default_rng([seed, 20]).permutation(n_identities)[:n_planted])

    def hypernym_caption(rng: np.random.Generator) -> str:
        template = HYPERNYM_SCENES[int(rng.integers(len(HYPERNYM_SCENES)))]
        who = HYPERNYMS[int(rng.integers(len(HYPERNYMS)))]
        return template.format(who=who, city=CITIES[int(rng.integers(len(CITIES)))])

    # Base corpus rows: (kind, owner, index); owner is a study identity (planted) or an extra.
    rows = [("generic", -1, k) for k in range(n_generic)]
    rows += [("extra", e, j) for e in range(n_extras) for j in range(extra_photos)]
    rows += [("planted", int(i), j) for i in planted for j in range(planted_photos)]
    order = np.random.default_rng([seed, 22]).permutation(len(rows))
    extras = [sample_identity(np.random.default_rng([seed, 23, e])) for e in range(n_extras)]

    image_dir, tsv_dir = outdir / "web" / "img", outdir / "web" / "cc3m"
    class_dir, held_dir = outdir / "eval" / "classes", outdir / "web" / "val"
    for d in (image_dir, tsv_dir, class_dir, held_dir):
        d.mkdir(parents=True, exist_ok=True)

    total = len(rows)
    total += len(SCENE_SHAPES) * eval_per_class + n_eval_pairs
    key_width = max(6, len(str(len(rows) - 1)))
    keys, paths, captions = [], [], []
    shown: dict[str, list[str]] = {"file": [], "person_id": []}  # base images of planted ids
    with tqdm(total=total, desc="world base", unit="img", file=sys.stderr, mininterval=2) as bar:
        for pos, r in enumerate(order):
            kind, owner, idx = rows[r]
            rng = np.random.default_rng([seed, 24, pos])
            if kind == "generic":
                img, caption = render_scene(np.random.default_rng([seed, 25, idx]), image_size)
            else:
                face = params[owner] if kind == "planted" else extras[owner]
                stream = 26 if kind == "planted" else 27
                img = render_face(
                    face, np.random.default_rng([seed, stream, owner, idx]), image_size
                )
                caption = hypernym_caption(rng)
            key = f"{pos:0{key_width}d}"
            write_jpeg(image_dir / f"{key}.jpg", img)
            keys.append(key)
            paths.append(f"{key}.jpg")
            if kind == "planted":
                shown["file"].append(f"{key}.jpg")
                shown["person_id"].append(person_ids[owner])
            captions.append(caption)
            bar.update(1)

        for c, shape in enumerate(SCENE_SHAPES):
            sdir = class_dir / shape
            sdir.mkdir(exist_ok=True)
            for k in range(eval_per_class):
                img, _ = render_scene(np.random.default_rng([seed, 30, c, k]), image_size, shape)
                write_jpeg(sdir / f"{k:03d}.jpg", img)
            bar.update(eval_per_class)
        held = []  # (caption, URL) of the validation TSV
        for k in range(n_eval_pairs):
            img, caption = render_scene(np.random.default_rng([seed, 31, k]), image_size)
            write_jpeg(held_dir / f"{k:04d}.jpg", img)
            held.append((caption, f"http://{BASE_HOST}/val/{k:04d}.jpg"))
            bar.update(1)

    _check_captions(captions, [-1] * len(captions), names, members=[])
    tsv = tsv_dir / "Train_GCC-training.tsv"
    tsv.write_text(
        "".join(f"{c}\thttp://{BASE_HOST}/img/{p}\n" for c, p in zip(captions, paths))
    )
    validation = tsv_dir / "Validation_GCC-1.1.0-Validation.tsv"
    validation.write_text("".join(f"{c}\t{u}\n" for c, u in held))
    write_checksums(outdir / "web.sha256", [tsv, validation])
    is_planted = np.zeros(n_identities, bool)
    is_planted[planted] = True
    _write_parquet(
        {
            "person_id": person_ids,
            "name": names,
            "planted": pa.array(is_planted.tolist(), pa.bool_()),
            "base_photos": pa.array((is_planted * planted_photos).tolist(), pa.int64()),
        },
        outdir / "truth.parquet",
    )
    # keys are zero-padded positions, written in order: the rows are already sorted by file
    _write_parquet(
        {name: pa.array(values, pa.string()) for name, values in shown.items()},
        outdir / "planted.parquet",
    )
    summary = {
        "base_pairs": len(keys),
        "generic": n_generic,
        "extras": n_extras * extra_photos,
        "planted_identities": [person_ids[i] for i in planted],
        "planted_photos": planted_photos,
        "eval_classes": len(SCENE_SHAPES),
        "eval_images": len(SCENE_SHAPES) * eval_per_class,
        "eval_pairs": n_eval_pairs,
    }
    (outdir / "base.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
