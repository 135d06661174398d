"""``idia serve``: the single-person audit as a local web page (issue 12, item 3).

The paper's public face was a Gradio Space: upload photos, type a name, see whether the model
knows the person. This page does the same on the auditor's own machine and shows the evidence of
``idia audit`` (its ``audit.html``: verdict, vote, p-value, per-template table, photos and their
problems, provenance), with ``audit.json`` / ``audit.html`` to download.

Why Starlette and not Gradio: the page needs a file form, a progress view and the existing HTML
report, which Starlette serves with three small dependencies (starlette, uvicorn,
python-multipart). Gradio would add dozens of packages to a pinned scientific stack, keeps every
upload in one cache shared by all sessions, and by default loads fonts and reports usage over the
network; here no byte leaves the machine and every rule about the photos is ours to state and test:

- each audit is a job with an unguessable id (``secrets.token_urlsafe``) that is bound to the
  browser session that made it; another session gets 404 for its page, status and files;
- uploads go to a per-job folder (mode 0700) and are deleted when the audit ends, unless the
  user ticks "keep"; a request larger than ``max_upload_bytes`` is refused with a message that
  names the limit and the option that raises it;
- unreadable or empty files are listed on the verdict page (``idia.audit.inspect_photos``), not
  fatal; the audit fails only when no photo is usable, with that list as the message.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import html
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = [
    "ModelChoice",
    "Settings",
    "add_parser",
    "create_app",
    "model_choices",
    "run",
]

SESSION_COOKIE = "idia_session"
DEFAULT_MAX_UPLOAD_MB = 50.0
DEFAULT_MAX_FILES = 500


# --------------------------------------------------------------------------------------------
# Models offered on the page
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: a short label for people and the spec that loads it."""

    label: str
    spec: str


def _parse_model_arg(value: str) -> ModelChoice:
    """``SPEC`` or ``LABEL=SPEC`` (a label keeps long paths off the page)."""
    label, sep, spec = value.partition("=")
    if not sep or ":" in label or "/" in label:
        label, spec = value, value
    if not spec.strip():
        raise ValueError(f"--model {value!r} is empty; pass e.g. local:results/models/world-vit")
    return ModelChoice(label.strip(), spec.strip())


def model_choices(
    specs: Sequence[str] = (), config: str | Path | None = None, results: str | Path = "results"
) -> tuple[list[ModelChoice], list[str]]:
    """The models of ``--model`` and of a workflow config, and a note for each one left out.

    A trained model of the config (``models:`` with ``train:``, and the injection grid
    ``<name>-n<N>``) is offered when its folder under ``results/models/`` exists; a pretrained
    one (``arch:`` + ``pretrained:``) always is.
    """
    choices = [_parse_model_arg(s) for s in specs]
    notes: list[str] = []
    if config is not None:
        import yaml

        config = Path(config)
        if not config.is_file():
            raise ValueError(f"config file {str(config)!r} does not exist; pass --config FILE")
        cfg = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        models = dict(cfg.get("models") or {})
        injection = cfg.get("injection") or {}
        for name, spec in (injection.get("models") or {}).items():
            for level in injection.get("levels") or []:
                models[f"{name}-n{level}"] = spec
        for name, spec in models.items():
            spec = spec or {}
            if "spec" in spec:
                choices.append(ModelChoice(name, str(spec["spec"])))
                continue
            if "pretrained" in spec:
                choices.append(ModelChoice(name, f"open_clip:{spec['arch']}/{spec['pretrained']}"))
                continue
            folder = Path(results) / "models" / name
            if (folder / "open_clip_config.json").is_file():
                choices.append(ModelChoice(name, f"local:{folder}"))
            else:
                notes.append(
                    f"model {name!r} of {config} is not trained yet ({folder} has no "
                    f"open_clip_config.json); run `snakemake {folder}/card.json` to train it"
                )
    from idia.backends import parse_model_spec

    for choice in choices:  # a typo fails at start-up, not at the first audit
        parsed = parse_model_spec(choice.spec)
        if parsed.backend == "local" and not (parsed.path and parsed.path.is_dir()):
            raise ValueError(
                f"model folder {str(parsed.path)!r} (--model {choice.spec}) does not exist; pass "
                "a folder that holds open_clip_config.json and open_clip_model.safetensors, "
                "e.g. one under results/models/"
            )
    labels = [c.label for c in choices]
    clashes = sorted({label for label in labels if labels.count(label) > 1})
    if clashes:
        raise ValueError(
            f"two models share the label(s) {clashes}; name them apart with --model LABEL=SPEC"
        )
    return choices, notes


# --------------------------------------------------------------------------------------------
# Settings and jobs
# --------------------------------------------------------------------------------------------


@dataclass
class Settings:
    """Everything the server fixes for all audits; the page chooses among ``models``."""

    models: list[ModelChoice]
    work_dir: Path | None = None  # None: a private temporary folder, removed at shutdown
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_files: int = DEFAULT_MAX_FILES
    candidates: list[str] | None = None  # None: a generated pool of ``pool_size`` names
    candidates_source: str | None = None
    pool_size: int = 1000
    seed: int = 11
    templates: list[str] | None = None  # None: the paper's 21
    tau: int = 1
    namesakes: int = 50  # the namesake test's pool size; 0 turns it off
    alpha: float = 0.05  # the namesake test is passed when its p-value is at most this
    device: str = "auto"
    photo_root: Path | None = None  # audits of server folders are allowed only under this


@dataclass
class Job:
    """One audit: who asked (session), what (name, photos, models) and how far it got."""

    id: str
    session: str
    name: str
    folder: Path
    photo_dir: Path
    uploaded: bool
    models: list[ModelChoice]
    tau: int
    keep_photos: bool
    include_photos: bool
    state: str = "queued"  # queued → running → done | failed
    steps: list[dict] = field(default_factory=list)
    error: str | None = None
    created: float = field(default_factory=time.time)
    seconds: float | None = None
    photos_deleted: bool = False

    @property
    def out_dir(self) -> Path:
        return self.folder / "out"

    def step(self, text: str) -> None:
        for s in self.steps:
            s["state"] = "done"
        self.steps.append({"text": text, "state": "running"})

    def status(self, queue_position: int) -> dict:
        total = 3 + 2 * len(self.models)  # check, (load, attack) per model, report, done
        done = sum(s["state"] == "done" for s in self.steps)
        return {
            "state": self.state,
            "steps": self.steps,
            "done": done if self.state != "done" else total,
            "total": total,
            "queue_position": queue_position,
            "error": self.error,
        }


class _TooLarge(Exception):
    """The request body passed the upload limit."""


class _FormError(ValueError):
    """A form field is wrong; the message says which and what to do."""


class Auditor:
    """Holds the jobs and runs them one at a time (a CPU is busy enough with one audit)."""

    def __init__(self, settings: Settings):
        from idia.attack import PAPER_TEMPLATES

        if not settings.models:
            raise ValueError(
                "no model to offer; pass --model SPEC (e.g. local:results/models/world-vit) or "
                "--config config/config.yaml after training its models"
            )
        self.settings = settings
        self.templates = list(settings.templates or PAPER_TEMPLATES)
        self._own_dir = settings.work_dir is None
        if settings.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="idia-serve-"))
        else:
            self.work_dir = Path(settings.work_dir)
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.chmod(0o700)
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._clips: dict = {}  # spec → Backend
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="idia-audit")

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop taking work; remove the temporary work folder (uploads and results with it)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def new_job_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_urlsafe(24)
        folder = self.work_dir / job_id
        folder.mkdir(mode=0o700)
        return job_id, folder

    def submit(self, job: Job) -> None:
        with self._lock:
            self.jobs[job.id] = job
        self._pool.submit(self._run, job)

    def get(self, job_id: str, session: str | None) -> Job | None:
        """The job, only for the session that made it: anyone else cannot tell it exists."""
        job = self.jobs.get(job_id)
        if job is None or session is None or not secrets.compare_digest(job.session, session):
            return None
        return job

    def of_session(self, session: str | None) -> list[Job]:
        if session is None:
            return []
        return [j for j in self.jobs.values() if secrets.compare_digest(j.session, session)]

    def queue_position(self, job: Job) -> int:
        with self._lock:
            return sum(j.state == "queued" and j.created < job.created for j in self.jobs.values())

    def forget(self, job: Job) -> None:
        with self._lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    # -- the audit ---------------------------------------------------------------------------
    def preload(self, choice: ModelChoice) -> None:
        """Load a model before the first audit needs it."""
        self._clip(choice)

    def _clip(self, choice: ModelChoice):
        """The loaded backend of ``choice`` (loaded once, kept for later audits)."""
        from idia.backends import load_backend

        if choice.spec not in self._clips:
            self._clips[choice.spec] = load_backend(choice.spec, self.settings.device)
        return self._clips[choice.spec]

    def _candidates(self, name: str) -> tuple[list[str], int | None, str | None]:
        s = self.settings
        if s.candidates is not None:
            return s.candidates, None, s.candidates_source
        from idia.names import candidate_pool, faker_name_lists

        pool = candidate_pool([name], s.pool_size, s.seed, *faker_name_lists("en_US"))
        return pool, s.seed, "generated: the name + random en_US First Last names"

    def _run(self, job: Job) -> None:
        from idia.audit import collect_photos, render_html, run_audit

        start = time.time()
        job.state, outcome = "running", "failed"
        try:
            job.step("Checking the photos")
            usable, problems = collect_photos(job.photo_dir)
            job.steps[-1]["text"] = (
                f"Checked the photos: {len(usable)} usable, {len(problems)} with a remark"
            )
            candidates, seed, source = self._candidates(job.name)
            parts: list[dict] = []
            for choice in job.models:
                job.step(f"Loading model {choice.label}")
                backend = self._clip(choice)
                job.step(f"Running the attack with {choice.label} on {len(usable)} photos")
                res = run_audit(
                    job.photo_dir,
                    job.name,
                    [backend],  # its weight files are hashed into the provenance
                    candidates=candidates,
                    templates=self.templates,
                    tau=job.tau,
                    seed=seed,
                    candidates_source=source,
                    namesakes=self.settings.namesakes,
                    namesake_seed=self.settings.seed,  # --seed draws the namesakes, as in audit
                    alpha=self.settings.alpha,
                )
                res["models"][0]["label"] = choice.label
                parts.append(res)
            result = {**parts[0], "models": [p["models"][0] for p in parts]}
            job.step("Writing audit.json and audit.html")
            job.out_dir.mkdir(mode=0o700)
            (job.out_dir / "audit.json").write_text(
                json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            render_html(result, job.out_dir / "audit.html", include_photos=job.include_photos)
            job.step("Done")
            outcome = "done"
        except Exception as err:  # shown on the page; the server keeps serving
            known = isinstance(err, ValueError | RuntimeError | OSError)
            job.error = str(err) if known else f"{type(err).__name__}: {err}"
            if job.uploaded:  # the server's folders mean nothing to the person who uploaded
                job.error = job.error.replace(f"{job.photo_dir}{os.sep}", "")
                job.error = job.error.replace(str(job.photo_dir), "the uploaded photos")
            outcome = "failed"
            print(f"idia serve: audit {job.id[:6]}… failed: {job.error}", file=sys.stderr)
        finally:  # the state changes last: whoever sees it ended sees the photos' fate too
            job.seconds = time.time() - start
            if job.uploaded and not job.keep_photos:
                shutil.rmtree(job.photo_dir, ignore_errors=True)
                job.photos_deleted = True
            for s in job.steps:
                s["state"] = "done" if outcome == "done" else s["state"]
            job.state = outcome


# --------------------------------------------------------------------------------------------
# Upload handling
# --------------------------------------------------------------------------------------------


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused as soon as it passes ``limit`` bytes (no Content-Length trust)."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def _safe_filename(raw: str, taken: set[str]) -> str:
    """The browser's file name reduced to a plain name in the job folder, unique within it."""
    base = _UNSAFE.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")[:120]
    base = base or "photo"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    name, n = base, 2
    while name.lower() in taken:
        name = f"{stem} ({n}){dot}{ext}"
        n += 1
    taken.add(name.lower())
    return name


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} GB"  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:62rem;
color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
.card{border:1px solid #ddd;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}
input[type=text],input[type=number]{font-size:1rem;padding:.35rem .5rem;width:24rem;max-width:100%}
.choice{font-weight:400;margin:.2rem 0}.muted{color:#666;font-size:.85rem}
button{font-size:1rem;padding:.45rem 1.2rem;margin-top:1rem;cursor:pointer}
.error{color:#b00020;font-weight:600;white-space:pre-wrap}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
ol.steps li.done{color:#1b5e20}ol.steps li.running{font-weight:600}
progress{width:100%;height:1.2rem}
.toolbar{background:#f4f6f8;border:1px solid #dde;border-radius:8px;padding:.7rem 1rem}
.toolbar a,.toolbar button{margin-right:1rem}.toolbar form{display:inline}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200, head: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"""<!DOCTYPE html>
<html lang=en><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style>{head}</head>
<body>{body}</body></html>
""",
        status_code=status,
    )


def _error(message: str, status: int) -> HTMLResponse:
    return _page(
        "IDIA audit: error",
        f"<h1>The audit was not started</h1><p class=error id=error>{_e(message)}</p>"
        "<p><a href='/'>Back to the form</a></p>",
        status,
    )


def _form_page(auditor: Auditor, session: str | None) -> HTMLResponse:
    s = auditor.settings
    models = "".join(
        f"<div class=choice><input type=checkbox name=model value='{i}' id='model{i}'"
        f"{' checked' if i == 0 else ''}> <label class=choice for='model{i}' "
        f"style='display:inline'>{_e(c.label)}</label> <code>{_e(c.spec)}</code></div>"
        for i, c in enumerate(s.models)
    )
    folder = (
        f"<label for=folder>…or a folder on this server (under <code>{_e(s.photo_root)}</code>)"
        "</label><input type=text id=folder name=folder placeholder='folder of photos'>"
        if s.photo_root
        else "<p class=muted>To audit a folder already on this machine instead of uploading, "
        "start the server with <code>--photo-root DIR</code>.</p>"
    )
    past = "".join(
        f"<li><a href='/jobs/{j.id}'>{_e(j.name)}</a> — {_e(j.state)}</li>"
        for j in sorted(auditor.of_session(session), key=lambda j: j.created)
    )
    past = f"<h2>Your audits in this session</h2><ul>{past}</ul>" if past else ""
    limit = _fmt_bytes(s.max_upload_bytes)
    pool = f"{len(s.candidates)} names" if s.candidates is not None else f"{s.pool_size} names"
    body = f"""
<h1>Does the model know this person?</h1>
<p class=muted>Identity Inference Attack (Hintersdorf et al., "Does CLIP Know My Face?"): the model
sees each photo and picks a name out of {pool} under {len(auditor.templates)} prompt templates;
when the person's name wins in at least &tau; templates, the model very likely saw this person
with their name during training. Photos stay on this machine and are deleted when the audit ends,
unless you ask to keep them.</p>
<form class=card id=audit-form method=post action="/audit" enctype="multipart/form-data">
<label for=name>The person's name</label>
<input type=text id=name name=name required placeholder="First Last" autocomplete=off>
<label for=photos>Photos of the person (JPEG or PNG; at most {_e(limit)} in all)</label>
<input type=file id=photos name=photos multiple accept="image/*">
{folder}
<label>Models</label>{models}
<label for=tau>&tau;: templates that must name the person</label>
<input type=number id=tau name=tau min=1 max={len(auditor.templates)} value={s.tau}>
<label class=choice><input type=checkbox name=keep value=1> keep my photos on this server after
the audit (in the audit's folder, until the server stops or you delete the audit)</label>
<label class=choice><input type=checkbox name=embed value=1> embed photo thumbnails in
audit.html</label>
<p class=error id=client-error></p>
<button type=submit id=submit>Run the audit</button>
</form>
{past}
<script>
document.getElementById('audit-form').addEventListener('submit', function (ev) {{
  var files = document.getElementById('photos').files, total = 0;
  for (var i = 0; i < files.length; i++) total += files[i].size;
  if (total > {s.max_upload_bytes}) {{
    ev.preventDefault();
    document.getElementById('client-error').textContent = 'The photos add up to ' +
      (total / 1048576).toFixed(1) + ' MB; this server accepts at most {_e(limit)} per audit. ' +
      'Choose fewer or smaller photos.';
  }}
}});
</script>"""
    return _page("IDIA audit", body)


def _progress_page(job: Job, status: dict) -> HTMLResponse:
    steps = "".join(f"<li class={s['state']}>{_e(s['text'])}</li>" for s in job.steps)
    queued = (
        f"<p id=queue>Waiting for {status['queue_position']} audit(s) ahead of this one.</p>"
        if job.state == "queued"
        else ""
    )
    body = f"""
<h1>Auditing {_e(job.name)}</h1>
<progress id=bar max={status["total"]} value={status["done"]}></progress>
{queued}<ol class=steps id=steps>{steps}</ol>
<p class=muted>This page updates itself. The audit belongs to this browser session only.</p>
<script>
(function poll() {{
  fetch('/jobs/{job.id}/status', {{credentials: 'same-origin'}}).then(function (r) {{
    return r.json();
  }}).then(function (s) {{
    if (s.state === 'done' || s.state === 'failed') {{ location.reload(); return; }}
    document.getElementById('bar').value = s.done;
    var ol = document.getElementById('steps'); ol.innerHTML = '';
    s.steps.forEach(function (st) {{
      var li = document.createElement('li'); li.className = st.state;
      li.textContent = st.text; ol.appendChild(li);
    }});
    setTimeout(poll, 500);
  }}).catch(function () {{ setTimeout(poll, 2000); }});
}})();
</script>"""
    return _page(
        f"Auditing {job.name}",
        body,
        head="<noscript><meta http-equiv=refresh content=2></noscript>",
    )


def _photos_note(job: Job) -> str:
    if not job.uploaded:
        return "The photos were read from a folder on this server and left where they are."
    if job.photos_deleted:
        return "Your uploaded photos were deleted from this server when the audit ended."
    return f"Your photos are kept on this server in <code>{_e(job.photo_dir)}</code>."


def _result_page(job: Job) -> HTMLResponse:
    report = (job.out_dir / "audit.html").read_text(encoding="utf-8")
    toolbar = f"""
<div class=toolbar id=toolbar style="background:#f4f6f8;border:1px solid #dde;border-radius:8px;
padding:.7rem 1rem;margin-bottom:1rem">
<b>Audit finished</b> in {job.seconds:.1f} s.
<a id=download-json href="/jobs/{job.id}/audit.json">Download audit.json</a>
<a id=download-html href="/jobs/{job.id}/audit.html">Download audit.html</a>
<a href="/">New audit</a>
<form method=post action="/jobs/{job.id}/delete" style="display:inline">
<button type=submit id=delete style="margin:0">Delete this audit now</button></form>
<div style="font-size:.85rem;color:#555;margin-top:.3rem" id=photos-note>{_photos_note(job)}
</div></div>"""
    return HTMLResponse(report.replace("<body>", "<body>" + toolbar, 1))


def _failed_page(job: Job) -> HTMLResponse:
    body = f"""
<h1>The audit of {_e(job.name)} failed</h1>
<p class=error id=error>{_e(job.error)}</p>
<p>{_photos_note(job)}</p>
<p><a href="/">Back to the form</a></p>"""
    return _page(f"Audit of {job.name} failed", body, status=200)


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------


def _session_of(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) >= 32 else None


def _with_session(response: Response, request: Request, session: str) -> Response:
    if _session_of(request) != session:
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
    return response


_NOT_FOUND = (
    "No such audit in this browser session. Audits are visible only to the browser session that "
    "started them, and are gone once deleted or once the server restarts."
)


def create_app(settings: Settings) -> Starlette:
    """The ASGI app; ``app.state.auditor`` holds the jobs (tests look at its folders)."""
    auditor = Auditor(settings)

    async def home(request: Request) -> Response:
        session = _session_of(request) or secrets.token_urlsafe(32)
        return _with_session(_form_page(auditor, session), request, session)

    async def submit(request: Request) -> Response:
        session = _session_of(request) or secrets.token_urlsafe(32)
        limit = settings.max_upload_bytes
        too_large = (
            f"The upload is larger than this server accepts per audit ({_fmt_bytes(limit)}). "
            "Choose fewer or smaller photos, or restart the server with a larger "
            "--max-upload-mb."
        )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return _with_session(_error(too_large, 413), request, session)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error("send the form as multipart/form-data (use the page's form)", 400)
        job_id, folder = auditor.new_job_folder()
        photo_dir = folder / "photos"
        photo_dir.mkdir(mode=0o700)
        try:
            parser = MultiPartParser(
                request.headers,
                _capped(request.stream(), limit),
                max_files=settings.max_files,
                max_fields=100 + len(settings.models),
                max_part_size=64 * 1024,
            )
            form = await parser.parse()
        except _TooLarge:
            shutil.rmtree(folder, ignore_errors=True)
            return _with_session(_error(too_large, 413), request, session)
        except MultiPartException as err:
            shutil.rmtree(folder, ignore_errors=True)
            return _error(
                f"the upload could not be read: {err.message} (at most {settings.max_files} "
                "files per audit; restart the server with a larger --max-files for more)",
                400,
            )
        try:
            taken: set[str] = set()
            n_uploaded = 0
            for item in form.getlist("photos"):
                if not isinstance(item, UploadFile) or not item.filename:
                    continue  # an empty file input sends a part without a file name
                data = await item.read()
                (photo_dir / _safe_filename(item.filename, taken)).write_bytes(data)
                n_uploaded += 1
            job = _job_from_form(form, settings, auditor, job_id, session, folder)
            if n_uploaded and not job.uploaded:
                raise _FormError("choose either photos to upload or a server folder, not both")
            if not n_uploaded and job.uploaded:
                raise _FormError(
                    "no photos: choose the person's photos to upload"
                    + (" or name a folder on the server" if settings.photo_root else "")
                )
        except _FormError as err:
            shutil.rmtree(folder, ignore_errors=True)
            return _with_session(_error(str(err), 400), request, session)
        finally:
            await form.close()
        auditor.submit(job)
        redirect = RedirectResponse(f"/jobs/{job_id}", status_code=303)
        return _with_session(redirect, request, session)

    def _job(request: Request) -> Job | None:
        return auditor.get(request.path_params["job"], _session_of(request))

    async def job_page(request: Request) -> Response:
        job = _job(request)
        if job is None:
            return _page("No such audit", f"<p class=error>{_e(_NOT_FOUND)}</p>", 404)
        if job.state == "done":
            return _result_page(job)
        if job.state == "failed":
            return _failed_page(job)
        return _progress_page(job, job.status(auditor.queue_position(job)))

    async def job_status(request: Request) -> Response:
        job = _job(request)
        if job is None:
            return JSONResponse({"error": _NOT_FOUND}, 404)
        return JSONResponse(job.status(auditor.queue_position(job)))

    async def job_file(request: Request) -> Response:
        job = _job(request)
        if job is None or job.state != "done":
            return JSONResponse({"error": _NOT_FOUND}, 404)
        name = request.url.path.rsplit("/", 1)[-1]  # audit.json or audit.html (the routes)
        media = "application/json" if name.endswith(".json") else "text/html; charset=utf-8"
        download = _safe_filename(f"audit-{job.name}", set()).replace(" ", "_")
        ext = name.rsplit(".", 1)[1]
        return Response(
            (job.out_dir / name).read_bytes(),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{download}.{ext}"'},
        )

    async def job_delete(request: Request) -> Response:
        job = _job(request)
        if job is None:
            return _page("No such audit", f"<p class=error>{_e(_NOT_FOUND)}</p>", 404)
        if job.state in ("queued", "running"):
            return _error("the audit is still running; delete it once it has finished", 409)
        auditor.forget(job)
        return RedirectResponse("/", status_code=303)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        auditor.close()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/audit", submit, methods=["POST"]),
            Route("/jobs/{job}", job_page),
            Route("/jobs/{job}/status", job_status),
            Route("/jobs/{job}/audit.json", job_file),
            Route("/jobs/{job}/audit.html", job_file),
            Route("/jobs/{job}/delete", job_delete, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.auditor = auditor
    return app


def _job_from_form(
    form, settings: Settings, auditor: Auditor, job_id: str, session: str, folder: Path
) -> Job:
    """A job from the form's fields; _FormError says which field is wrong."""
    from idia.audit import check_name, check_tau  # the same rules as `idia audit`

    try:
        name = check_name(str(form.get("name") or ""))
    except ValueError as err:
        raise _FormError(str(err)) from None
    picked = []
    for value in form.getlist("model"):
        if not str(value).isdigit() or int(value) >= len(settings.models):
            raise _FormError(f"unknown model choice {str(value)!r}; reload the page")
        picked.append(settings.models[int(value)])
    if not picked:
        raise _FormError("choose at least one model")
    n_templates = len(auditor.templates)
    tau_text = str(form.get("tau") or settings.tau).strip()
    if not tau_text.lstrip("-").isdigit():
        raise _FormError(f"tau must be a whole number, got {tau_text!r}")
    try:
        tau = check_tau(int(tau_text), n_templates)
    except ValueError as err:
        raise _FormError(str(err)) from None
    photo_dir, uploaded = folder / "photos", True
    server_folder = str(form.get("folder") or "").strip()
    if server_folder:
        if settings.photo_root is None:
            raise _FormError(
                "this server does not audit server folders (start it with --photo-root)"
            )
        root = settings.photo_root.resolve()
        photo_dir = (root / Path(server_folder).expanduser()).resolve()
        if not photo_dir.is_relative_to(root) or not photo_dir.is_dir():
            raise _FormError(
                f"{server_folder!r} is not a folder under {root}; name a folder of photos "
                "inside the server's --photo-root"
            )
        uploaded = False
    job = Job(
        id=job_id,
        session=session,
        name=name,
        folder=folder,
        photo_dir=photo_dir,
        uploaded=uploaded,
        models=picked,
        tau=tau,
        keep_photos=bool(form.get("keep")),
        include_photos=bool(form.get("embed")),
    )
    return job


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``idia serve`` subcommand (its options and help)."""
    serve = sub.add_parser(
        "serve",
        help="start a local web page for single-person audits (upload photos, read the verdict)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Serve the single-person audit as a web page on this machine: upload a person's\n"
            "photos (or name a folder under --photo-root), type the name, pick models, watch\n"
            "the progress and read the verdict page (the evidence of `idia audit`), with\n"
            "audit.json and audit.html to download. Photos are deleted when their audit ends\n"
            "unless the user asks to keep them; each browser session sees only its own audits.\n"
            "Models are loaded once, at start-up."
        ),
        epilog=(
            "examples:\n"
            "  idia serve --config config/config.yaml            # the workflow's trained models\n"
            "  idia serve --model world=local:results/models/world-vit --port 8000\n"
            "  idia serve --model open_clip:ViT-B-32-quickgelu/laion400m_e32 \\\n"
            "             --model siglip=hf:path/to/saved_siglip\n"
            "then open http://127.0.0.1:8000 in a browser."
        ),
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[LABEL=]SPEC",
        help="a model to offer, repeatable: local:DIR (a model the workflow trained, e.g. "
        "results/models/world-vit), open_clip:ARCH/TAG, open_clip:ARCH/WEIGHTS_FILE, "
        "open_clip:hf-hub:ORG/NAME, hf:ORG/NAME or hf:DIR (transformers CLIP, SigLIP, "
        "SigLIP 2, MetaCLIP 2); LABEL= names it on the page",
    )
    serve.add_argument(
        "--config",
        type=Path,
        help="also offer the models: of this workflow config (trained ones found under "
        "--results/models/)",
    )
    serve.add_argument(
        "--results", type=Path, default=Path("results"), help="the workflow's results folder"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest upload per audit in MB (default {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    serve.add_argument(
        "--max-files",
        type=int,
        default=DEFAULT_MAX_FILES,
        help=f"most files per audit (default {DEFAULT_MAX_FILES})",
    )
    serve.add_argument(
        "--photo-root",
        type=Path,
        help="allow audits of photo folders on this machine, under this folder only",
    )
    serve.add_argument(
        "--work-dir",
        type=Path,
        help="where audits are kept (default: a private temporary folder removed at exit)",
    )
    from idia.cli import add_pool_options

    add_pool_options(serve)
    serve.add_argument("--tau", type=int, default=1, help="default tau shown on the page")
    serve.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    return serve


def settings_from_args(args) -> Settings:
    """Check the options before anything starts; errors say which option to fix."""
    from idia.attack import PAPER_TEMPLATES
    from idia.cli import _read_lines
    from idia.names import read_name_list
    from idia.provenance import sha256_file

    choices, notes = model_choices(args.model, args.config, args.results)
    for note in notes:
        print(f"idia serve: {note}", file=sys.stderr)
    if args.max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.max_files < 1:
        raise ValueError(f"--max-files must be at least 1, got {args.max_files}")
    if args.photo_root is not None and not args.photo_root.is_dir():
        raise ValueError(f"--photo-root {str(args.photo_root)!r} is not a folder")
    templates = _read_lines(args.templates, "template") if args.templates else PAPER_TEMPLATES
    if not 1 <= args.tau <= len(templates):
        raise ValueError(f"--tau must be between 1 and {len(templates)}, got {args.tau}")
    candidates = source = None
    if args.candidates is not None:
        candidates = read_name_list(args.candidates)
        source = f"{args.candidates.name} (sha256 {sha256_file(args.candidates)})"
    elif args.pool_size < 2:
        raise ValueError(f"--pool-size must be at least 2, got {args.pool_size}")
    if args.namesakes < 0:
        raise ValueError(f"--namesakes must be 0 (off) or positive, got {args.namesakes}")
    from idia.namesakes import check_alpha

    try:
        check_alpha(args.alpha)
    except ValueError as err:
        raise ValueError(f"--alpha: {err}") from None
    return Settings(
        models=choices,
        work_dir=args.work_dir,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_files=args.max_files,
        candidates=candidates,
        candidates_source=source,
        pool_size=args.pool_size,
        seed=args.seed,
        templates=list(templates),
        tau=args.tau,
        namesakes=args.namesakes,
        alpha=args.alpha,
        device=args.device,
        photo_root=args.photo_root,
    )


def run(args) -> int:
    """``idia serve``: check the options, then serve until Ctrl-C."""
    import uvicorn

    settings = settings_from_args(args)
    app = create_app(settings)
    try:
        for choice in settings.models:  # fail now on a model that cannot load (e.g. offline)
            print(f"idia serve: loading model {choice.label} ({choice.spec})", file=sys.stderr)
            app.state.auditor.preload(choice)
    except Exception:
        app.state.auditor.close()
        raise
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"idia serve: listening on {args.host}: anyone who can reach this machine on port "
            f"{args.port} can upload photos and run audits",
            file=sys.stderr,
        )
    labels = ", ".join(c.label for c in settings.models)
    print(f"idia serve: models {labels}; open http://{args.host}:{args.port} (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
