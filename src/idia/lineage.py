"""The chain back to raw inputs: from a file, through the provenance manifests of the jobs that
made it and its inputs, to the files no job made (``idia provenance``).

:func:`chain` re-hashes every file on the way, so that a file changed since a job read or wrote
it is reported, not silently trusted; :func:`format_chain` prints the tree. The manifests and
hashes themselves are :mod:`idia.provenance`'s, which every job writes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from idia import provenance
from idia.provenance import FULL_HASH_ENV, MANIFEST_DIR, manifest_path, path_hash

__all__ = ["chain", "find_manifest", "format_chain"]


def _rel(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def find_manifest(path: str | Path, root: str | Path | None = None) -> tuple[Path, Path] | None:
    """``(manifest, root)`` for ``path``, or None.

    Without ``root``, every folder above ``path`` is tried as the working directory. A file
    inside a ``directory()`` output is covered by that directory's manifest.
    """
    target = Path(path).absolute()
    roots = [Path(root).absolute()] if root is not None else [target.parent, *target.parents]
    for base in roots:
        rel = _rel(target, base)
        if rel.is_absolute():
            if manifest_path(target, base).is_file():
                return manifest_path(target, base), base
            continue
        for sub in [rel, *list(rel.parents)[:-1]]:
            candidate = manifest_path(sub, base)
            if candidate.is_file():
                return candidate, base
    return None


def _key_params(params: dict, limit: int = 8) -> list[str]:
    """Seeds first (at any depth), then the other scalar params, as ``key=value``."""
    flat: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k in sorted(value):
                walk(f"{prefix}.{k}" if prefix else str(k), value[k])
        else:
            flat.append((prefix, value))

    walk("", params)
    seeds = [(k, v) for k, v in flat if "seed" in k.rsplit(".", 1)[-1]]
    scalars = [
        (k, v)
        for k, v in flat
        if "." not in k and (k, v) not in seeds and isinstance(v, (bool, int, float, str))
    ]
    return [f"{k}={v}" for k, v in (seeds + scalars)[:limit]]


def _compare(recorded: dict, current: dict) -> bool:
    """Whether a file is as recorded: its hash, size and file count, and for a partially
    hashed file its mtime too (the hash covers only its ends)."""
    if recorded.get("missing"):
        return True
    keys = ("sha256", "bytes", "files", "mtime")
    return all(recorded.get(k) == current.get(k) for k in keys if k in recorded or k in current)


def _mismatch(p: str, how: str, recorded: dict, now: dict) -> str:
    what = f"recorded sha256 {str(recorded.get('sha256'))[:12]}, now {str(now.get('sha256'))[:12]}"
    if recorded.get("sha256") == now.get("sha256") and recorded.get("hash") == "partial":
        what = (
            f"size {recorded.get('bytes')} → {now.get('bytes')}, mtime {recorded.get('mtime')} → "
            f"{now.get('mtime')}; only its first and last MiB are hashed, so rerun the job, or "
            f"record full hashes with {FULL_HASH_ENV}=1"
        )
    return f"{p} changed since {how} ({what})"


def chain(
    path: str | Path,
    *,
    root: str | Path | None = None,
    code: bool = False,
    verify: bool = True,
) -> dict:
    """The provenance tree of ``path``: its producing job, then each input's, recursively.

    Each node: ``path``, ``hash`` (now), ``job`` (rule, wildcards, key params, git commit,
    timestamp; None for a raw input), ``inputs`` (child nodes), ``seen`` (True when the node's
    subtree is already shown elsewhere in the tree) and ``problems`` (hash mismatches: a file
    that changed since the job recorded it). Raises FileNotFoundError when ``path`` has no
    manifest. ``code`` keeps package-source inputs; ``verify`` re-hashes files.
    """
    found = find_manifest(path, root)
    if found is None:
        raise FileNotFoundError(
            f"no provenance manifest for {str(path)!r}: was it produced by the workflow? "
            "run `snakemake` first (manifests live under "
            f"{MANIFEST_DIR.as_posix()}/ of the workflow's working directory)"
        )
    base = found[1]
    seen: set[str] = set()
    problems: list[str] = []
    current_cache: dict[str, dict] = {}

    def current(p: str, recorded: dict | None = None) -> dict:
        """The file's hash now, as thorough as the record it is compared with."""
        # read at call time, as the manifests do: a run may set its own threshold
        threshold: float = provenance.PARTIAL_THRESHOLD
        if recorded is not None and recorded.get("hash") == "full":
            threshold = math.inf
        elif recorded is not None and recorded.get("hash") == "partial" and "mtime" in recorded:
            threshold = min(provenance.PARTIAL_THRESHOLD, max(recorded.get("bytes", 1) - 1, 0))
        key = f"{threshold}:{p}"
        if key not in current_cache:
            where = Path(p) if Path(p).is_absolute() else base / p
            current_cache[key] = path_hash(where, threshold=threshold) if verify else {}
        return current_cache[key]

    def node(p: str, recorded_by: tuple[str, dict] | None) -> dict:
        n: dict[str, Any] = {"path": p, "problems": []}
        if verify:
            n["hash"] = current(p)
        if recorded_by is not None and verify:
            rule, entry = recorded_by
            now = current(p, entry)
            if now.get("missing") and not entry.get("missing"):
                n["problems"].append(f"{p} is missing now (rule {rule} read it)")
            elif not now.get("missing") and not _compare(entry, now):
                n["problems"].append(_mismatch(p, f"rule {rule} read it", entry, now))
        full = Path(p) if Path(p).is_absolute() else base / p
        hit = find_manifest(full, base)
        if hit is None:
            n["job"] = None
            return n
        text = hit[0].read_text()
        manifest = json.loads(text)
        n["manifest"] = _rel(hit[0], base).as_posix()
        n["job"] = {
            "rule": manifest.get("rule"),
            "wildcards": manifest.get("wildcards", {}),
            "key_params": _key_params(manifest.get("params", {})),
            "params": manifest.get("params", {}),
            "git_commit": manifest.get("git_commit"),
            "git_dirty": manifest.get("git_dirty"),
            "timestamp": manifest.get("timestamp"),
            "host": manifest.get("host"),
        }
        if manifest.get("templates_sha256"):
            n["job"]["templates_sha256"] = manifest["templates_sha256"]
        own = next((o for o in manifest.get("outputs", []) if o["path"] == p), None)
        now = current(p, own) if verify else {}
        wrote = f"rule {manifest.get('rule')} wrote it"
        if own is not None and verify and now.get("missing") and not own.get("missing"):
            if not n["problems"]:  # not already reported by the job that read it
                n["problems"].append(f"{p} is missing now ({wrote}); rerun `snakemake`")
        elif own is not None and verify and not _compare(own, now):
            n["problems"].append(_mismatch(p, wrote, own, now))
        key = hashlib.sha256(text.encode()).hexdigest()  # one job, however many outputs
        if key in seen:
            n["seen"] = True
            return n
        seen.add(key)
        n["inputs"] = []
        hidden = 0
        for entry in manifest.get("inputs", []):
            if entry.get("role") == "code" and not code:
                hidden += 1
                continue
            child = node(entry["path"], (manifest.get("rule"), entry))
            if entry.get("role"):
                child["role"] = entry["role"]
            n["inputs"].append(child)
        n["hidden_code_inputs"] = hidden
        return n

    tree = node(_rel(Path(path).absolute(), base).as_posix(), None)

    def gather(n: dict) -> None:
        problems.extend(n["problems"])
        for child in n.get("inputs", []):
            gather(child)

    gather(tree)
    return {"root": str(base), "tree": tree, "problems": problems}


def _short_hash(h: dict | None) -> str:
    if not h:
        return ""
    if h.get("missing"):
        return "  [missing]"
    what = f"{h['files']} files, " if h.get("directory") else ""
    partial = ", partial hash" if h.get("hash") == "partial" else ""
    return f"  [{what}sha256 {h['sha256'][:12]}{partial}]"


def format_chain(result: dict) -> str:
    """The tree of :func:`chain` as indented text, ``←`` pointing from a file to its maker."""
    lines: list[str] = []

    def emit(n: dict, depth: int) -> None:
        pad = "    " * depth
        role = f"  ({n['role']})" if n.get("role") else ""
        lines.append(f"{pad}{n['path']}{_short_hash(n.get('hash'))}{role}")
        for problem in n["problems"]:
            lines.append(f"{pad}  !! HASH MISMATCH: {problem}")
        job = n.get("job")
        if job is None:
            lines.append(f"{pad}  ← raw input (no manifest)")
            return
        wild = " ".join(f"{k}={v}" for k, v in job["wildcards"].items())
        params = " ".join(job["key_params"])
        commit = str(job.get("git_commit") or "unknown")[:10]
        dirty = "+dirty" if job.get("git_dirty") is True else ""
        detail = "  ".join(x for x in (wild and f"[{wild}]", params) if x)
        lines.append(
            f"{pad}  ← rule {job['rule']}  {detail}  (git {commit}{dirty}, {job.get('timestamp')})"
        )
        if n.get("seen"):
            lines.append(f"{pad}      … inputs shown above")
            return
        for child in n.get("inputs", []):
            emit(child, depth + 1)
        if n.get("hidden_code_inputs"):
            lines.append(
                f"{pad}    ({n['hidden_code_inputs']} package source input(s) hidden; --code)"
            )

    emit(result["tree"], 0)
    if result["problems"]:
        lines.append("")
        lines.append(f"!! {len(result['problems'])} HASH MISMATCH(ES): results may be stale:")
        lines.extend(f"!!   {p}" for p in result["problems"])
    return "\n".join(lines)
