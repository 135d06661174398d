"""How an audit is shown: text made safe to print, the one-page HTML report, the terminal lines.

Apart from the audit itself (``idia.audit``), which computes the verdict and its evidence: every
string here may come from the user (a photo's file name, the person's name), so each is escaped
for the terminal (``printable``) and for HTML before it is shown.
"""

from __future__ import annotations

import base64
import html
import io
import unicodedata
from pathlib import Path

import numpy as np

from idia.attack import load_image

#: Characters that reorder the text displayed after them (a file name could flip a verdict).
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def printable(text: object) -> str:
    """``text`` with control and format characters escaped (``\\n``, ``\\x1b``, ``\\u202e``).

    A photo's file name is the user's (or an attacker's) string: raw, a newline or an ANSI
    escape in it could print a fake verdict line in a terminal or a log.
    """
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:62rem;
color:#222;line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{font-size:2.4rem;font-weight:700;margin:.3rem 0}
.member{color:#b00020}.nonmember{color:#1b5e20}
.card{border:1px solid #ddd;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #eee;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1b5e20}.bad{color:#b00020}.muted{color:#666;font-size:.85rem}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
img.thumb{width:96px;height:auto;border-radius:4px}
"""


def _e(value) -> str:
    return html.escape(printable(value), quote=True)


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if np.isfinite(p) else "n/a"


def _thumbnail(path: str) -> str | None:
    try:
        image = load_image(path)
    except (ValueError, OSError):
        return None
    image.thumbnail((192, 192))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def namesake_outcome(ns: dict | None, alpha_sign: str = "alpha") -> str | None:
    """The namesake test's answer in words: ``namesake test: not passed at alpha = 0.05``.

    None when the test was not run; "does not apply" when no namesake could be formed. The
    page writes ``α``; terminals and logs get the plain word (not every console prints α).
    """
    if not ns:
        return None
    alpha = ns.get("alpha")
    if not ns["n"] or ns.get("passed") is None or alpha is None:
        return "namesake test: does not apply"
    verdict = "passed" if ns["passed"] else "not passed"
    return f"namesake test: {verdict} at {alpha_sign} = {alpha:g}"


def _namesake_section(ns: dict | None) -> str:
    """The namesake test in a few lines, with one sentence on how to read it beside the decoys."""
    if not ns:
        return ""
    note = f"<p class=muted>{_e(ns['note'])}</p>" if ns.get("note") else ""
    if not ns["n"]:
        return f"<h3>Namesake test</h3>{note}"
    shares = ns["pick_shares"]
    counts = ns["counts"]
    outcome = (namesake_outcome(ns, "α") or "").capitalize()
    cls = "ok" if ns.get("passed") else "bad"
    relation = "&le;" if ns.get("passed") else "&gt;"
    return f"""
<h3>Namesake test</h3>
<p class="namesake-outcome {cls}"><b>{_e(outcome)}</b>
(namesake p-value {_fmt_p(ns["p_value"])} {relation} &alpha;)</p>
<p>Namesake p-value <b>{_fmt_p(ns["p_value"])}</b> against {ns["n"]} near-misses of the name
({counts["first"]} with the same first name, {counts["surname"]} with the same surname,
{counts["edit"]} one-letter edits; seed {ns["seed"]}); vote score {ns["vote_score"]} /
{ns["n_templates"]} templates name the person among them. Of the photo &times; template
predictions, {100 * shares["true"]:.1f}% pick the name itself,
{100 * shares["first"]:.1f}% a namesake sharing only the first name,
{100 * shares["surname"]:.1f}% one sharing only the surname and
{100 * shares["edit"]:.1f}% a one-letter edit.</p>{note}
<p class=muted>How to read it: the decoy p-value asks whether the model ties these photos to
this name more than to random names; the namesake p-value asks whether it ties them to this
exact name more than to names that share a part of it &mdash; a small decoy p-value with a large
namesake p-value means the model knows a face that goes with the first name or the surname
(or a famous-looking face), not this person by name. The smallest possible namesake p-value is
1 / ({ns["n"]} + 1).</p>"""


def _model_section(res: dict) -> str:
    verdict, cls = ("member", "member") if res["member"] else ("not a member", "nonmember")
    rows = "".join(
        "<tr>"
        f"<td>{_e(r['template'])}</td>"
        f"<td>{_e(r['prediction'])}{' (tie)' if r['tie'] else ''}</td>"
        f"<td class=num>{r['votes']}</td><td class=num>{r['true_votes']}</td>"
        f"<td class={'ok' if r['correct'] else 'bad'}>{'yes' if r['correct'] else 'no'}</td>"
        f"<td class=num>{r['mean_rank']:.1f}</td><td class=num>{r['mean_margin']:+.4f}</td>"
        "</tr>"
        for r in res["templates"]
    )
    prov = res.get("provenance") or {}
    files = (
        "".join(
            f"<li><code>{_e(f['file'])}</code> sha256 <code>{_e(f['sha256'])}</code> "
            f"({f['bytes']} bytes)</li>"
            for f in prov.get("model_files", [])
        )
        or f"<li>{_e(prov.get('model_files_note') or 'no weight file recorded')}</li>"
    )
    packages = ", ".join(f"{_e(k)} {_e(v)}" for k, v in prov.get("packages", {}).items())
    cands = prov.get("candidates", {})
    temps = prov.get("templates", {})
    return f"""
<div class=card>
<div class=muted>model</div><div class=mono>{_e(res["model"])}</div>
<div class="verdict {cls}">{verdict}</div>
<p>Vote score <b>{res["vote_score"]} / {res["n_templates"]}</b> templates name the person
(member when &ge; &tau; = {res["tau"]}).
Decoy p-value <b>{_fmt_p(res["p_value"])}</b> against {res["n_decoys"]} decoy names
(small values mean the model ties these photos to this name more than to random names).
Mean rank of the true name {res["mean_rank"]:.1f} of {res["n_candidates"]} candidates;
top-1 in {100 * res["top1_rate"]:.1f}% of photo &times; template predictions;
mean margin {res["mean_margin"]:+.4f}. Photos used: {res["n_photos"]}.</p>
<table><thead><tr><th>template</th><th>most frequent prediction</th><th>votes</th>
<th>votes for the name</th><th>correct</th><th>mean rank</th><th>mean margin</th></tr></thead>
<tbody>{rows}</tbody></table>
{_namesake_section(res.get("namesakes"))}
<h3>Provenance</h3>
<ul>{files}</ul>
<table>
<tr><th>candidate pool</th><td>{cands.get("n")} names, sha256
<code>{_e(cands.get("sha256"))}</code>; source {_e(cands.get("source") or "generated")};
seed {_e(prov.get("seeds", {}).get("candidate_pool"))}</td></tr>
<tr><th>templates</th><td>{temps.get("n")} templates, sha256
<code>{_e(temps.get("sha256"))}</code></td></tr>
<tr><th>code</th><td>git commit <code>{_e(prov.get("git_commit"))}</code>,
uncommitted changes: {_e(prov.get("git_dirty"))}</td></tr>
<tr><th>packages</th><td>{packages}; Python {_e(prov.get("python"))}</td></tr>
<tr><th>Haar cascade</th><td>{_e(prov.get("haar"))}</td></tr>
<tr><th>time (UTC)</th><td>{_e(prov.get("timestamp"))}</td></tr>
</table>
</div>"""


def render_html(result: dict, out_path: str | Path, include_photos: bool = False) -> Path:
    """Write the audit as one self-contained HTML page (inline CSS, no external assets).

    Photos are embedded as thumbnails only with ``include_photos``: by default the page can be
    shared without sharing the photos. Every user-supplied string is HTML-escaped.
    """
    out_path = Path(out_path)
    photo_rows = []
    for rec in result["photos"]:
        thumb = ""
        if include_photos and rec["faces"] is not None:
            data = _thumbnail(rec["path"])
            if data:
                thumb = (
                    f'<img class=thumb alt="{_e(rec["file"])}" src="data:image/jpeg;base64,{data}">'
                )
        faces = "&ndash;" if rec["faces"] is None else rec["faces"]
        used = "yes" if rec["used"] else "no"
        problem = _e(rec["problem"]) if rec["problem"] else ""
        photo_rows.append(
            f"<tr>{'<td>' + thumb + '</td>' if include_photos else ''}"
            f"<td><code>{_e(rec['file'])}</code></td><td class=num>{faces}</td>"
            f"<td class={'ok' if rec['used'] else 'bad'}>{used}</td><td>{problem}</td></tr>"
        )
    thumb_head = "<th>photo</th>" if include_photos else ""
    models = "".join(_model_section(res) for res in result["models"])
    n_problems = len(result["problems"])
    page = f"""<!DOCTYPE html>
<html lang=en><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IDIA audit: {_e(result["name"])}</title><style>{_CSS}</style></head>
<body>
<h1>Does the model know {_e(result["name"])}?</h1>
<p class=muted>Identity Inference Attack (Hintersdorf et al., "Does CLIP Know My Face?").
A model is called to know the person when, in at least &tau; prompt templates, the person's name
is the unique most frequent prediction over all photos among the candidate names.</p>
{models}
<h2>Photos</h2>
<p>{result["n_usable"]} of {len(result["photos"])} files used; {n_problems} problem(s) found.
Photos are {"embedded below" if include_photos else "not embedded in this page"}.</p>
<table><thead><tr>{thumb_head}<th>file</th><th>faces detected</th><th>used</th>
<th>problem</th></tr></thead><tbody>{"".join(photo_rows)}</tbody></table>
</body></html>
"""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path


def summary_lines(result: dict) -> list[str]:
    """The audit in a few lines for a terminal or a log: problems, then a verdict per model."""
    lines = [
        f"problem: {printable(Path(p['path']).name)}: {printable(p['problem'])}"
        for p in result["problems"]
    ]
    for res in result["models"]:
        verdict = "member" if res["member"] else "not a member"
        ns = res.get("namesakes")
        namesake = ""
        if ns and ns["n"]:
            namesake = f", namesake p = {ns['p_value']:.3g} over {ns['n']}: {namesake_outcome(ns)}"
        elif ns:
            namesake = f", {namesake_outcome(ns)}"
        lines.append(
            f"{printable(result['name'])}: {printable(res['model'])}: {verdict} (vote score "
            f"{res['vote_score']}/{res['n_templates']}, tau {res['tau']}, "
            f"p = {res['p_value']:.3g}{namesake}, {res['n_photos']} photos)"
        )
    return lines
