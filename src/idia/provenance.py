"""Provenance: the hashes of files and a manifest for every file the workflow writes.

Each workflow script ends with :func:`record` (through ``idia.smk.finish``). It writes one JSON
manifest per output of the job under ``results/.provenance/``, mirroring the output's path
relative to the working directory (``results/attack/m/scores.parquet`` →
``results/.provenance/results/attack/m/scores.parquet.json``). The manifests live outside every
``directory()`` output and are not outputs themselves, so Snakemake never sees them. A manifest
holds the rule, wildcards and params (seeds included), every input and output with its hash,
package versions, Python, the git commit of the workflow and when and where the job ran.

Every job imports this module; walking the manifests back from a file to the raw inputs
(``idia provenance``) is :mod:`idia.lineage`. The hash, versions and git helpers here are the
single implementation, shared with the audit (``idia.audit``) and the trainer.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_DIR",
    "PACKAGES",
    "PARTIAL_THRESHOLD",
    "code_version",
    "file_hash",
    "manifest_path",
    "package_versions",
    "path_hash",
    "record",
    "sha256_lines",
]

log = logging.getLogger(__name__)

#: Where the manifests live, relative to the workflow's working directory.
MANIFEST_DIR = Path("results/.provenance")

#: Files larger than this are hashed partially: size, mtime and the first and last MiB.
PARTIAL_THRESHOLD = 256 * 2**20

#: Set to 1 in the environment of a run to record full hashes of every file, however large.
FULL_HASH_ENV = "IDIA_FULL_HASH"
_EDGE = 2**20

#: The packages whose versions every manifest records.
PACKAGES = (
    "idia",
    "torch",
    "open_clip_torch",
    "duckdb",
    "img2dataset",
    "numpy",
    "pandas",
    "snakemake",
)

#: Suffixes of model weight files (open_clip checkpoints).
MODEL_SUFFIXES = (".safetensors", ".pt", ".bin")

#: Files Snakemake itself writes into directory outputs after the job: not part of the result.
_SNAKEMAKE_MARKERS = frozenset({".snakemake_timestamp"})
_SOURCE_CACHE = "snakemake-runtime-cache"


# --------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------


def sha256_lines(lines: Sequence[str]) -> str:
    """sha256 of the newline-joined strings: the identity of a candidate pool or template set."""
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _sha256_range(handle, size: int, digest) -> None:
    remaining = size
    while remaining > 0 and (block := handle.read(min(_EDGE, remaining))):
        digest.update(block)
        remaining -= len(block)


def file_hash(path: str | Path, *, threshold: float = PARTIAL_THRESHOLD) -> dict:
    """``{"bytes", "sha256", "hash"}`` of one file; ``hash`` is ``"full"`` or ``"partial"``.

    A file above ``threshold`` bytes gets the sha256 of its first and last MiB plus its size
    and mtime (``"hash": "partial"``): re-hashing a 100 GB shard on every job is not worth it,
    and a change that keeps the size, the mtime and both ends is not a realistic accident.
    :func:`idia.lineage.chain` compares all three, so an edit in the middle is caught by its mtime.
    """
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if stat.st_size <= threshold:
            _sha256_range(handle, stat.st_size, digest)
            return {"bytes": stat.st_size, "sha256": digest.hexdigest(), "hash": "full"}
        _sha256_range(handle, _EDGE, digest)
        handle.seek(max(stat.st_size - _EDGE, 0))
        _sha256_range(handle, _EDGE, digest)
    return {
        "bytes": stat.st_size,
        "sha256": digest.hexdigest(),
        "hash": "partial",
        "mtime": dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).isoformat(),
    }


def sha256_file(path: str | Path) -> str:
    """The full sha256 of one file, however large (model weights, candidate lists, shards)."""
    return file_hash(path, threshold=math.inf)["sha256"]


def path_hash(path: str | Path, *, threshold: float = PARTIAL_THRESHOLD) -> dict:
    """:func:`file_hash` of a file; for a folder, a summary of every file inside it.

    The folder summary is ``files`` (count), ``bytes`` (total) and ``sha256`` over the sorted
    ``relative path, size, sha256`` lines (plus the mtime of a partially hashed file), so one
    changed, added or removed file changes it.
    A missing path gives ``{"missing": True}``.
    """
    path = Path(path)
    if path.is_file():
        return file_hash(path, threshold=threshold)
    if not path.is_dir():
        return {"missing": True}
    lines, total, partial = [], 0, False
    for sub in sorted(p for p in path.rglob("*") if p.is_file()):
        if sub.name in _SNAKEMAKE_MARKERS:
            continue
        h = file_hash(sub, threshold=threshold)
        partial |= h["hash"] == "partial"
        total += h["bytes"]
        line = f"{sub.relative_to(path).as_posix()}\t{h['bytes']}\t{h['sha256']}"
        lines.append(line + (f"\t{h['mtime']}" if "mtime" in h else ""))
    return {
        "directory": True,
        "files": len(lines),
        "bytes": total,
        "sha256": sha256_lines(lines),
        "hash": "partial" if partial else "full",
    }


# --------------------------------------------------------------------------------------------
# Versions and code
# --------------------------------------------------------------------------------------------


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],  # read-only: never take the index lock
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def _code_version(where: Path) -> tuple[tuple[str, Any], ...]:
    head = _git(["rev-parse", "HEAD"], where)
    if head is None:
        return (("git_commit", "unknown"), ("git_dirty", "unknown"))
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return (
        ("git_commit", head.strip()),
        ("git_dirty", "unknown" if status is None else bool(status.strip())),
    )


def code_version(where: str | Path | None = None) -> dict:
    """Commit and dirty flag of the git repository holding ``where`` (default: this package),
    or ``"unknown"`` outside one."""
    where = Path(where) if where is not None else Path(__file__)
    where = where.resolve()
    if not where.is_dir():
        where = where.parent
    return dict(_code_version(where))


# --------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------


def manifest_path(output: str | Path, root: str | Path = ".") -> Path:
    """Where the manifest of ``output`` lives, for a workflow run in ``root``."""
    root = Path(root)
    out = Path(output)
    if out.is_absolute():
        try:
            rel = out.resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path("_absolute", *out.resolve().parts[1:])
    else:
        rel = Path(os.path.normpath(out))
    return root / MANIFEST_DIR / f"{rel.as_posix()}.json"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return _json_safe(value.item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _as_mapping(obj: Any) -> dict:
    """Named entries of a Snakemake Namedlist, a dict or a namespace."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return dict(obj)
    if hasattr(obj, "items") and callable(obj.items):
        return dict(obj.items())
    if hasattr(obj, "__dict__") and not isinstance(obj, (str, list, tuple)):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {}


def _named_files(obj: Any) -> list[tuple[str | None, str]]:
    """``(name, path)`` for every file of a Snakemake input/output: named ones first."""
    named: list[tuple[str | None, str]] = []
    for name, value in _as_mapping(obj).items():
        for path in [value] if isinstance(value, (str, os.PathLike)) else list(value):
            named.append((str(name), os.fspath(path)))
    seen = {p for _, p in named}
    rest = [] if isinstance(obj, dict) else [os.fspath(p) for p in obj or []]
    return named + [(None, p) for p in rest if p not in seen]


def _role(name: str | None, path: str) -> str | None:
    if name == "code" or path.endswith(".py"):
        return "code"
    if path.endswith(MODEL_SUFFIXES):
        return "model"
    if Path(path).name == "candidates.parquet":
        return "candidate_pool"
    return None


def _source_path(path: str) -> str:
    """The workflow file behind Snakemake's per-run source cache copy, which is deleted after
    the run (``workflow.source_path``): the original can be re-hashed later, the copy cannot."""
    parts = Path(path).parts
    if _SOURCE_CACHE in parts:
        after = parts[parts.index(_SOURCE_CACHE) + 2 :]
        if len(after) > 1 and after[0] == "file":
            original = os.path.normpath(os.path.join(os.sep, *after[1:]))
            if Path(original).exists():
                return original
    return path


def _relative(path: str, root: Path) -> str:
    """``path`` relative to the workflow's working directory when inside it: a clone of the
    repository at another place records the same paths and does not look changed."""
    if not os.path.isabs(path):
        return path
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def _file_entry(
    name: str | None, path: str, threshold: float, root: Path, known: Mapping[str, dict]
) -> dict:
    path = _relative(_source_path(path), root)
    entry: dict[str, Any] = {"path": path}
    if name is not None:
        entry["name"] = name
    role = _role(name, path)
    if role is not None:
        entry["role"] = role
    full = known.get(os.path.normpath(path))
    where = root / path
    if full is not None and where.is_file() and where.stat().st_size == full["bytes"]:
        entry.update(bytes=int(full["bytes"]), sha256=str(full["sha256"]), hash="full")
    else:
        entry.update(path_hash(where, threshold=threshold))
    return entry


def _known_hashes(hashes: Mapping[str | os.PathLike, dict] | None, root: Path) -> dict[str, dict]:
    """``hashes`` keyed by the paths the manifest records (relative to ``root`` when inside)."""
    known = {}
    for path, value in (hashes or {}).items():
        missing = {"bytes", "sha256"} - set(value)
        if missing:
            raise ValueError(f"known hash of {path}: {sorted(missing)} missing in {value}")
        known[os.path.normpath(_relative(_source_path(os.fspath(path)), root))] = value
    return known


def _templates_sha256(templates: Any) -> str | None:
    if templates == "paper":
        from idia.templates import config_templates

        templates = config_templates(templates)
    if isinstance(templates, (list, tuple)) and all(isinstance(t, str) for t in templates):
        return sha256_lines(list(templates))
    return None


def _threshold(threshold: float | None) -> float:
    """The partial-hash threshold: as given, else none at all when ``IDIA_FULL_HASH=1``."""
    if threshold is not None:
        return threshold
    return math.inf if os.environ.get(FULL_HASH_ENV, "") == "1" else PARTIAL_THRESHOLD


def build_manifest(
    smk: Any,
    *,
    threshold: float | None = None,
    root: str | Path = ".",
    hashes: Mapping[str | os.PathLike, dict] | None = None,
) -> dict:
    """The manifest of the job described by a Snakemake script object (or a stand-in with
    ``rule``, ``input``, ``output``, ``params``, ``wildcards``, ``log``).

    Paths inside ``root`` (the workflow's working directory) are recorded relative to it.
    ``hashes`` maps a file of the job to the full ``{"bytes", "sha256"}`` that the job already
    computed (a download checks every byte anyway): recorded as a full hash, whatever the size,
    without reading the file again; an entry whose size no longer matches is hashed anew.
    """
    threshold = _threshold(threshold)
    root = Path(root)
    known = _known_hashes(hashes, root)
    params = _json_safe(_as_mapping(getattr(smk, "params", None)))
    manifest: dict[str, Any] = {
        "manifest_version": 1,
        "rule": getattr(smk, "rule", None),
        "wildcards": _json_safe(_as_mapping(getattr(smk, "wildcards", None))),
        "params": params,
        "inputs": [_file_entry(n, p, threshold, root, known) for n, p in _named_files(smk.input)],
        "outputs": [_file_entry(n, p, threshold, root, known) for n, p in _named_files(smk.output)],
        "log": [_relative(os.fspath(p), root) for p in (getattr(smk, "log", None) or [])],
    }
    if "templates" in params:
        manifest["templates_sha256"] = _templates_sha256(params["templates"])
    scriptdir = getattr(smk, "scriptdir", None)
    manifest.update(
        packages=package_versions(),
        python=platform.python_version(),
        **code_version(scriptdir),
        timestamp=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        host=platform.node(),
    )
    return manifest


def record(
    smk: Any,
    *,
    root: str | Path = ".",
    threshold: float | None = None,
    hashes: Mapping[str | os.PathLike, dict] | None = None,
) -> list[Path]:
    """Write the job's manifest for each of its outputs; return the manifest paths.

    ``root`` is the workflow's working directory (Snakemake runs scripts there). Files over
    :data:`PARTIAL_THRESHOLD` are hashed partially unless ``threshold`` says otherwise, the
    run's environment sets ``IDIA_FULL_HASH=1`` or ``hashes`` gives their full hash (see
    :func:`build_manifest`).
    """
    manifest = build_manifest(smk, threshold=threshold, root=root, hashes=hashes)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    written = []
    for entry in manifest["outputs"]:
        target = manifest_path(entry["path"], root)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
        written.append(target)
    log.info("provenance: %d manifest(s) under %s", len(written), Path(root) / MANIFEST_DIR)
    return written
