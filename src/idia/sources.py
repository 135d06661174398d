"""Acquire the workflow's external sources: one file from a URL, the Hugging Face hub or disk.

A source is named by one location string:

- ``https://...`` / ``http://...``: plain HTTP with timeouts and retries (``requests`` with
  urllib3's retry policy); an interrupted download resumes from its ``.part`` file;
- ``hf://datasets/ORG/NAME/PATH[@REVISION]``: the Hugging Face hub through ``huggingface_hub``
  (gated datasets such as LAION's need the terms accepted and ``HF_TOKEN`` set);
- anything else: a local path (a file the user obtained by hand, e.g. the FaceScrub lists).

Every fetched file is checked against a pinned checksum when one is known (``sha256:HEX``, or
``git-blob-sha1:HEX`` for files pinned by a git commit) and its size and sha256 are returned for
its provenance manifest. A source that cannot be reached fails with what to do next.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

CHUNK = 1 << 20
_HF = re.compile(r"^hf://(datasets|models|spaces)/([^/@]+/[^/@]+)/([^@]+?)(?:@(.+))?$")
_CHECKSUM = re.compile(r"^(sha256|git-blob-sha1):([0-9a-f]+)$")
#: The folder of a run where remote sources are downloaded to (by group: laion, cc3m, names).
RESOURCES = "resources"
#: The config key that names the LAION metadata's url, caption and key columns.
LAION_COLUMNS_KEY = "sources.laion.columns"


class SourceError(RuntimeError):
    """A source that cannot be fetched or does not match its pinned checksum."""


@dataclass(frozen=True)
class HubFile:
    repo_type: str
    repo_id: str
    filename: str
    revision: str | None


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://", "hf://"))


def shipped(location: str, project: str | Path, workdir: str | Path = ".") -> str:
    """A relative local path that the run's folder ``workdir`` lacks but the ``project`` ships
    (e.g. ``config/reference/...``) as the project's file; every other location as written."""
    if is_remote(location) or Path(location).is_absolute() or (Path(workdir) / location).exists():
        return location
    in_project = Path(project) / location
    return str(in_project) if in_project.exists() else location


def source_path(group: str, location: str) -> str:
    """Where a stage reads a source: a remote one's download, ``resources/<group>/<file>`` in
    the run's folder (the fetch_source rule's output), or the local file itself."""
    if is_remote(location):
        return f"{RESOURCES}/{group}/{file_name(location)}"
    return location


def parse_hub(location: str) -> HubFile:
    match = _HF.match(location)
    if not match:
        raise SourceError(
            f"not a hub location: {location!r}; write hf://datasets/ORG/NAME/PATH[@REVISION]"
        )
    repo_type, repo_id, filename, revision = match.groups()
    return HubFile(repo_type.rstrip("s"), repo_id, filename, revision)


def file_name(location: str) -> str:
    """The file name a location saves to: its last path component, without a query."""
    if location.startswith("hf://"):
        return Path(parse_hub(location).filename).name
    return Path(location.split("?", 1)[0].split("#", 1)[0].rstrip("/")).name


def parquet_files(locations: list[str]) -> list[str]:
    """``locations`` with each local folder (written with a trailing ``/``) replaced by its
    ``*.parquet`` files in name order, so a folder of downloaded metadata reads as its list.

    A folder that does not exist stays as written: the check for missing inputs lists it with
    the rest. A remote folder, or one that holds no parquet file, is an error that says what to
    write instead.
    """
    files: list[str] = []
    for location in locations:
        if not location.endswith("/"):
            files.append(location)
        elif is_remote(location):
            raise SourceError(
                f"{location!r}: only a local folder can stand for its parquet files; list the "
                "remote files one by one"
            )
        elif not Path(location).is_dir():
            files.append(location)
        else:
            found = sorted(p for p in Path(location).glob("*.parquet") if p.is_file())
            if not found:
                raise SourceError(
                    f"folder {location!r} holds no .parquet file; put the metadata files there "
                    "or list them one by one"
                )
            files += [str(p) for p in found]
    return files


def parse_checksum(text: str) -> tuple[str, str]:
    match = _CHECKSUM.match(text.strip().lower())
    if not match:
        raise SourceError(
            f"checksum {text!r} is not 'sha256:<64 hex>' or 'git-blob-sha1:<40 hex>'"
        )
    algo, digest = match.groups()
    if len(digest) != (64 if algo == "sha256" else 40):
        raise SourceError(f"checksum {text!r} has {len(digest)} hex digits")
    return algo, digest


def digest(path: str | Path, algo: str = "sha256") -> str:
    """The file's sha256, or its git blob id (sha1 over ``blob <size>\\0`` + content)."""
    path = Path(path)
    if algo == "sha256":
        h = hashlib.sha256()
    elif algo == "git-blob-sha1":
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % path.stat().st_size)
    else:
        raise SourceError(f"unknown checksum algorithm {algo!r}")
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def read_checksums(path: str | Path) -> dict[str, str]:
    """A ``sha256sum``-format file (``HEX  NAME`` per line) as {name: 'sha256:HEX'}.

    Lines may instead carry an explicit ``ALGO:HEX  NAME``; blank lines and ``#`` comments are
    skipped; a malformed line is an error that names it.
    """
    path = Path(path)
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise SourceError(f"{path}:{number}: expected 'CHECKSUM  NAME', got {line!r}")
        value, name = parts[0], parts[1].lstrip("*").strip()
        if ":" not in value:
            value = f"sha256:{value}"
        try:
            parse_checksum(value)
        except SourceError as err:
            raise SourceError(f"{path}:{number}: {err}") from None
        pins[name] = value.lower()
    return pins


def verify(path: str | Path, checksum: str | None) -> dict:
    """Size and sha256 of ``path``; raise if it does not match the pinned ``checksum``."""
    path = Path(path)
    sha256 = digest(path, "sha256")
    record = {"size": path.stat().st_size, "sha256": sha256, "pinned": checksum}
    if checksum:
        algo, expected = parse_checksum(checksum)
        actual = sha256 if algo == "sha256" else digest(path, algo)
        if actual != expected:
            raise SourceError(
                f"{path}: {algo} is {actual}, but the source is pinned to {expected}. The file "
                "changed upstream or the download is corrupt; delete it and run again, or update "
                "the pin if the new version is intended."
            )
    return record


def _http(url: str, dest: Path, *, timeout: float, retries: int) -> None:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(
        total=retries,
        backoff_factor=1.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET",),
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
            if response.status_code == 416:  # the .part file is already complete
                os.replace(part, dest)
                return
            if response.status_code in (401, 403):
                raise SourceError(
                    f"{url}: HTTP {response.status_code} (access denied). If the source needs "
                    f"a login, download it by hand and put it at {dest}."
                )
            response.raise_for_status()
            mode = "ab" if have and response.status_code == 206 else "wb"
            with open(part, mode) as handle:
                for block in response.iter_content(CHUNK):
                    handle.write(block)
    except requests.RequestException as err:
        raise SourceError(
            f"{url}: could not download ({err}). Check the URL and the network (a proxy is read "
            f"from http_proxy / https_proxy), or download it by hand and put it at {dest}."
        ) from err
    os.replace(part, dest)


def _hub(location: str, dest: Path) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    hub = parse_hub(location)
    page = f"https://huggingface.co/{hub.repo_type}s/{hub.repo_id}"
    staging = dest.parent / ".hub"
    try:
        fetched = hf_hub_download(
            hub.repo_id,
            hub.filename,
            repo_type=hub.repo_type,
            revision=hub.revision,
            local_dir=staging,
        )
    except GatedRepoError as err:
        raise SourceError(
            f"{location}: {hub.repo_id} is gated. Accept its terms at {page} with your account, "
            "create a read token and set HF_TOKEN=<token> (or run `hf auth login`), then rerun."
        ) from err
    except RepositoryNotFoundError as err:
        raise SourceError(
            f"{location}: repository {hub.repo_id} not found, or it is private/gated and no "
            f"token was sent. Check the name at {page}; set HF_TOKEN if it needs a login."
        ) from err
    except LocalEntryNotFoundError as err:  # a subclass of EntryNotFoundError: first
        raise SourceError(
            f"{location}: the hub is not reachable from here and the file is not cached. "
            f"Download it where the hub is reachable and put it at {dest}, or point the "
            "config at the local file (HF_HUB_OFFLINE=1 is set in offline runs)."
        ) from err
    except EntryNotFoundError as err:
        raise SourceError(f"{location}: no file {hub.filename!r} in {hub.repo_id}") from err
    os.replace(fetched, dest)


def fetch(
    location: str,
    dest: str | Path,
    *,
    checksum: str | None = None,
    timeout: float = 60,
    retries: int = 3,
) -> dict:
    """Bring ``location`` to ``dest``, check it and return its provenance record.

    A ``dest`` that already exists and matches the pin is kept (reruns download nothing).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        if location.startswith("hf://"):
            _hub(location, dest)
        elif location.startswith(("http://", "https://")):
            _http(location, dest, timeout=timeout, retries=retries)
        else:
            src = Path(location)
            if not src.is_file():
                raise SourceError(f"source file not found: {src}")
            shutil.copyfile(src, dest)
    if dest.stat().st_size == 0:
        dest.unlink()
        raise SourceError(f"{location}: the file is empty (0 bytes); check the source")
    try:
        record = verify(dest, checksum)
    except SourceError:
        dest.unlink()
        raise
    return {"location": location, **record}


def read_columns(
    path: str | Path, columns: Mapping[str, str], *, config_key: str | None = None
) -> pa.Table:
    """Only the named columns of a parquet file (``columns``: role → column name, e.g.
    ``{"url": "URL"}``): LAION's files are gigabytes, and their column names vary by release.

    A missing column is an error that names the file, the column, the columns the file has and,
    when the names come from the config, the ``config_key`` to set (pyarrow's own error names
    none of these).
    """
    import pyarrow.parquet as pq

    present = pq.read_schema(path).names
    missing = {role: name for role, name in columns.items() if name not in present}
    if missing:
        absent = ", ".join(
            f"{name!r} ({f'`{config_key}.{role}`' if config_key else role})"
            for role, name in missing.items()
        )
        fix = (
            f"Set `{config_key}` in the config to this file's column names"
            if config_key
            else "Rerun the rule that wrote it"
        )
        raise SourceError(f"{path}: no column {absent}; the file has columns {present}. {fix}.")
    return pq.read_table(path, columns=list(dict.fromkeys(columns.values())))


@dataclass(frozen=True)
class Needed:
    """A user-supplied input: where it must be and how a user obtains it."""

    path: str
    how: str


def missing_message(needed: list[Needed]) -> str | None:
    """One message that lists every missing user-supplied input and how to get it (or None)."""
    missing = [n for n in needed if not Path(n.path).exists()]
    if not missing:
        return None
    lines = [f"{len(missing)} input(s) that you supply by hand are missing:"]
    lines += [f"  - {n.path}\n      {n.how}" for n in missing]
    lines.append("Put them there (or point the config's `sources:` at them) and rerun.")
    return "\n".join(lines)
