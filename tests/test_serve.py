"""Tests of ``idia serve``: the real page in headless Chromium, and its rules over plain HTTP.

The browser test audits against a model that really knows someone: a tiny open_clip trained
here, in seconds, on six rendered identities captioned with their names in the paper's templates.
A trained identity (new photos of it) is a member; an identity it never saw, under a name of the
candidate pool it never saw either, is not. The page must show those verdicts, and the votes and
p-values that ``idia.audit.run_audit`` computes directly for the same photos, name and pool. The
rules over HTTP use the random tiny model of ``conftest.model_dir``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idia.attack import PAPER_TEMPLATES
from idia.audit import run_audit
from idia.cli import main
from idia.models import load_clip
from idia.serve import ModelChoice, Settings, create_app, model_choices
from idia.world import render_face, sample_identity

FILLERS = [  # made-up names: the candidate pool of every audit here
    "Jordan Pigott",
    "Mira Castell",
    "Tomas Ekwueme",
    "Lena Varga",
    "Owen Hartley",
    "Priya Raman",
    "Felix Moreau",
    "Hana Satou",
    "Diego Alvarez",
    "Ingrid Holm",
    "Samir Haddad",
    "Chloe Brennan",
]
N_TEMPLATES = 21
ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"
#: The identities the knowing model is trained on: name → identity seed of the world's renderer.
TRAINED = {name: 100 + i for i, name in enumerate(FILLERS[:1] + FILLERS[2:7])}
MEMBER, STRANGER = "Jordan Pigott", "Mira Castell"  # trained / in the pool but never trained
STRANGER_SEED = 7
#: Where the browser test saves the member's verdict page (README's docs/serve.png), resolved
#: now: the live server's fixture changes the working directory.
SCREENSHOT = (
    Path(os.environ["IDIA_SCREENSHOT"]).resolve() if os.environ.get("IDIA_SCREENSHOT") else None
)


# --------------------------------------------------------------------------------------------
# Photos, model and truth
# --------------------------------------------------------------------------------------------


def _faces(folder: Path, identity_seed: int, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    params = sample_identity(np.random.default_rng(identity_seed))
    paths = []
    for j in range(n):
        rgb = render_face(params, np.random.default_rng([identity_seed, j]), 112)
        path = folder / f"face_{j}.jpg"
        Image.fromarray(rgb).save(path, quality=92)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("people")
    _faces(root / "alice", 5, 4)
    _faces(root / "bob", 6, 4)
    return {"alice": root / "alice", "bob": root / "bob"}


@pytest.fixture(scope="module")
def clip(model_dir):
    return load_clip(model_dir=model_dir, device="cpu")


def _train_knowing_model(out: Path, steps: int = 300) -> Path:
    """A tiny open_clip that knows the ``TRAINED`` identities by name (contrastive training).

    Each step shows one face of every identity beside its name in a random paper template;
    single-threaded, seeded, ~15 s on a busy 2-core CPU. Saved in the workflow's model layout.
    """
    import torch
    from safetensors.torch import save_file

    from idia.compat import import_open_clip

    open_clip = import_open_clip()
    arch = f"local-dir:{ARCH_DIR}"
    names = list(TRAINED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of six: threads only add contention here
    try:
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms(arch)
        tokenizer = open_clip.get_tokenizer(arch)
        faces = torch.stack(
            [
                torch.stack(
                    [
                        preprocess(Image.fromarray(render_face(params, rng, 64)))
                        for rng in (np.random.default_rng([seed, j]) for j in range(24))
                    ]
                )
                for seed in TRAINED.values()
                for params in [sample_identity(np.random.default_rng(seed))]
            ]
        )  # [identity, photo, C, H, W]
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
        loss_fn = open_clip.ClipLoss()
        gen = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(steps):
            photo = torch.randint(faces.shape[1], (len(names),), generator=gen)
            template = torch.randint(len(PAPER_TEMPLATES), (len(names),), generator=gen).tolist()
            texts = tokenizer([PAPER_TEMPLATES[t].format(n) for t, n in zip(template, names)])
            image_f, text_f, scale = model(faces[torch.arange(len(names)), photo], texts)
            loss = loss_fn(image_f, text_f, scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    out.mkdir(parents=True)
    (out / "open_clip_config.json").write_text((ARCH_DIR / "open_clip_config.json").read_text())
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / "open_clip_model.safetensors"))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """The knowing model in ``results/models/world-vit`` and new photos of a member and a
    stranger (photo indices the training never drew)."""
    root = tmp_path_factory.mktemp("workflow")
    model = _train_knowing_model(root / "results" / "models" / "world-vit")
    member = root / "photos" / "member"
    member.mkdir(parents=True)
    params = sample_identity(np.random.default_rng(TRAINED[MEMBER]))
    for j in range(30, 36):
        rgb = render_face(params, np.random.default_rng([TRAINED[MEMBER], j]), 112)
        Image.fromarray(rgb).save(member / f"face_{j}.jpg", quality=92)
    stranger = root / "photos" / "stranger"
    _faces(stranger, STRANGER_SEED, 6)
    return {"root": root, "model": model, "member": member, "stranger": stranger}


def _settings(model_dir: Path, work_dir: Path, **kw) -> Settings:
    return Settings(
        models=[ModelChoice("tiny", f"local:{model_dir}")],
        work_dir=work_dir,
        candidates=FILLERS,
        candidates_source="test fillers",
        device="cpu",
        **kw,
    )


def _files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------
# The page in headless Chromium
# --------------------------------------------------------------------------------------------


def _chromium() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        message = "chromium and chromedriver are not installed (apt-get install chromium "
        message += "chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1200,1700")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    yield driver
    driver.quit()


class LiveServer:
    """The app under uvicorn on a free port of 127.0.0.1, in a thread of the test process."""

    def __init__(self, app):
        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def live(world):
    """The server as a user starts it in a workflow folder: ``--model local:results/models/…``.

    (A relative spec, so that the page and its screenshot show no path of the test machine.)
    """
    settings = _settings(world["model"], world["root"] / "serve-work")
    settings.models = [ModelChoice("world-vit", "local:results/models/world-vit")]
    cwd = Path.cwd()
    os.chdir(world["root"])
    try:
        with LiveServer(create_app(settings)) as server:
            yield server
    finally:
        os.chdir(cwd)


def _submit(driver, url: str, name: str, files: list[Path]):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "photos").send_keys("\n".join(str(f) for f in files))
    assert driver.find_element(By.ID, "model0").is_selected()
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 180).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".verdict, #error"))
    )
    errors = driver.find_elements(By.ID, "error")
    assert not errors, errors[0].text
    return driver.current_url.rsplit("/", 1)[-1]


def _page_numbers(driver) -> dict:
    """Verdict, vote score, p-value and template rows as the page shows them."""
    from selenium.webdriver.common.by import By

    card = driver.find_element(By.CSS_SELECTOR, ".card")
    text = card.text
    vote = re.search(r"Vote score (\d+) / (\d+) templates", text)
    p_value = re.search(r"Decoy p-value ([0-9.e+-]+) against (\d+) decoy names", text)
    assert vote and p_value, text
    rows = card.find_element(By.TAG_NAME, "table").find_elements(By.CSS_SELECTOR, "tbody tr")
    return {
        "verdict": card.find_element(By.CSS_SELECTOR, ".verdict").text,
        "vote_score": int(vote.group(1)),
        "n_templates": int(vote.group(2)),
        "p_value": p_value.group(1),  # as printed: 3 significant digits
        "n_decoys": int(p_value.group(2)),
        "template_rows": len(rows),
    }


@pytest.mark.browser
def test_browser_member_and_non_member_verdicts_match_the_truth(browser, live, world):
    auditor = live.app.state.auditor
    clip = load_clip(model_dir=world["model"], device="cpu")
    files = [
        world["model"] / "open_clip_config.json",
        world["model"] / "open_clip_model.safetensors",
    ]
    for name, folder, is_member in [
        (MEMBER, world["member"], True),
        (STRANGER, world["stranger"], False),
    ]:
        job_id = _submit(browser, live.url, name, sorted(folder.iterdir()))
        assert len(job_id) >= 32  # unguessable

        shown = _page_numbers(browser)
        direct = run_audit(folder, name, [(clip, files)], candidates=FILLERS)["models"][0]
        assert direct["member"] is is_member  # the model knows whom it was trained on
        assert shown["verdict"] == ("member" if is_member else "not a member")
        assert shown["vote_score"] == direct["vote_score"]
        assert shown["p_value"] == f"{direct['p_value']:.3g}"
        assert shown["n_decoys"] == direct["n_decoys"] == len(FILLERS) - 1
        assert shown["n_templates"] == shown["template_rows"] == N_TEMPLATES

        # audit.json through the page's own link, in this browser session
        link = browser.find_element("id", "download-json").get_attribute("href")
        assert link.endswith(f"/jobs/{job_id}/audit.json")
        fetched = browser.execute_async_script(
            "fetch(arguments[0]).then(r => r.text()).then(arguments[1])", link
        )
        served = json.loads(fetched)["models"][0]
        assert served["vote_score"] == direct["vote_score"]
        assert served["member"] is is_member and served["p_value"] == direct["p_value"]
        assert served["provenance"]["candidates"]["source"] == "test fillers"
        # the namesake test's answer, as audit.json gives it, on the page
        outcome = served["namesakes"]["outcome"].replace("alpha", "α").capitalize()
        assert outcome in browser.find_element("css selector", ".namesake-outcome").text

        # the photos are gone from the server, the report stays
        job = auditor.jobs[job_id]
        assert not job.photo_dir.exists()
        assert _files_under(job.folder) == ["audit.html", "audit.json"]
        assert "deleted from this server" in browser.find_element("id", "photos-note").text

        if is_member and SCREENSHOT is not None:
            assert browser.save_screenshot(str(SCREENSHOT)), SCREENSHOT


@pytest.mark.browser
def test_browser_lists_broken_and_empty_files_and_still_audits(browser, live, people, tmp_path):
    from selenium.webdriver.common.by import By

    upload = tmp_path / "upload"
    upload.mkdir()
    good = sorted(people["alice"].iterdir())[:3]
    for path in good:
        shutil.copy(path, upload / path.name)
    (upload / "broken.jpg").write_bytes(good[0].read_bytes()[:400])  # a JPEG cut short
    (upload / "empty.jpg").write_bytes(b"")
    _submit(browser, live.url, "Someone Else", sorted(upload.iterdir()))

    rows = {
        r.find_element(By.TAG_NAME, "code").text: r.text
        for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        if r.find_elements(By.TAG_NAME, "code")
    }
    assert "not a readable image" in rows["broken.jpg"]
    assert "not a readable image" in rows["empty.jpg"] and "empty" in rows["empty.jpg"]
    for path in good:
        assert " yes" in rows[path.name]
    assert "3 of 5 files used" in browser.find_element(By.TAG_NAME, "body").text
    assert _page_numbers(browser)["template_rows"] == N_TEMPLATES


# --------------------------------------------------------------------------------------------
# The rules, over HTTP
# --------------------------------------------------------------------------------------------


def _photo_parts(folder: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(folder.iterdir())]


def _wait(client, job_url: str) -> dict:
    deadline = time.time() + 180
    while True:
        status = client.get(job_url + "/status").json()
        if status["state"] in ("done", "failed"):
            return status
        assert time.time() < deadline, status
        time.sleep(0.2)


@pytest.fixture
def app_and_work(model_dir, tmp_path):
    work = tmp_path / "work"
    return create_app(_settings(model_dir, work)), work


def _post(client, name: str, photos: Path | None, **fields):
    data = {"name": name, "model": "0", **fields}
    files = _photo_parts(photos) if photos is not None else [("photos", ("", b"", "x"))]
    return client.post("/audit", data=data, files=files, follow_redirects=False)


def test_two_sessions_cannot_see_each_others_audits(app_and_work, people):
    from starlette.testclient import TestClient

    app, _ = app_and_work
    with TestClient(app) as alice, TestClient(app) as mallory:
        alice.get("/")
        mallory.get("/")
        assert alice.cookies["idia_session"] != mallory.cookies["idia_session"]
        resp = _post(alice, "Alice Example", people["alice"])
        assert resp.status_code == 303
        job_url = resp.headers["location"]
        assert _wait(alice, job_url)["state"] == "done"
        for path in ("", "/status", "/audit.json", "/audit.html"):
            assert alice.get(job_url + path).status_code == 200
            denied = mallory.get(job_url + path)
            assert denied.status_code == 404 and "Alice" not in denied.text
        assert mallory.post(job_url + "/delete", follow_redirects=False).status_code == 404
        assert "Alice Example" in alice.get("/").text
        assert "Alice Example" not in mallory.get("/").text
        # a request without any session cookie is a stranger too
        with TestClient(app) as anonymous:
            assert anonymous.get(job_url + "/audit.json").status_code == 404
        # the owner can delete the audit; it is gone, files and all
        job = app.state.auditor.jobs[job_url.rsplit("/", 1)[-1]]
        assert alice.post(job_url + "/delete", follow_redirects=False).status_code == 303
        assert alice.get(job_url).status_code == 404 and not job.folder.exists()


def test_upload_over_the_limit_is_refused_with_a_clear_message(model_dir, people, tmp_path):
    from starlette.testclient import TestClient

    work = tmp_path / "work"
    app = create_app(_settings(model_dir, work, max_upload_bytes=20_000))
    size = sum(p.stat().st_size for p in people["alice"].iterdir())
    assert size > 20_000
    with TestClient(app) as client:
        resp = _post(client, "Alice Example", people["alice"])
        assert resp.status_code == 413
        assert "larger than this server accepts per audit (19.5 KB)" in resp.text
        assert "--max-upload-mb" in resp.text

        # a body without Content-Length is cut off at the limit while it streams
        boundary = "idiaboundary"
        photo = sorted(people["alice"].iterdir())[0].read_bytes()

        def body():
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nA B\r\n'
            ).encode()
            for j in range(10):
                yield (
                    (
                        f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
                        f'filename="p{j}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
                    ).encode()
                    + photo
                    + b"\r\n"
                )
            yield f"--{boundary}--\r\n".encode()

        resp = client.post(
            "/audit",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert resp.status_code == 413 and "--max-upload-mb" in resp.text
    assert not work.exists() or _files_under(work) == []
    assert not app.state.auditor.jobs


def test_photos_are_kept_only_on_request_and_bad_forms_are_refused(app_and_work, people):
    from starlette.testclient import TestClient

    app, work = app_and_work
    with TestClient(app) as client:
        resp = _post(client, "Alice Example", people["alice"], keep="1")
        job_url = resp.headers["location"]
        assert _wait(client, job_url)["state"] == "done"
        job = app.state.auditor.jobs[job_url.rsplit("/", 1)[-1]]
        assert sorted(p.name for p in job.photo_dir.iterdir()) == sorted(
            p.name for p in people["alice"].iterdir()
        )
        assert "kept on this server" in client.get(job_url).text

        for fields, folder, message in [
            ({"name": "  "}, people["alice"], "name is empty"),
            ({"name": "?!"}, people["alice"], "needs at least two letters"),
            ({"model": "7"}, people["alice"], "unknown model"),
            ({"tau": "0"}, people["alice"], "between 1 and the number of templates (21)"),
            ({"tau": "22"}, people["alice"], "between 1 and the number of templates (21)"),
            ({"tau": "two"}, people["alice"], "tau must be a whole number, got &#x27;two&#x27;"),
            ({}, None, "no photos"),
            ({"folder": str(people["alice"])}, None, "does not audit server folders"),
        ]:
            resp = _post(client, fields.pop("name", "Alice Example"), folder, **fields)
            assert resp.status_code == 400 and message in resp.text, (fields, resp.text)
        # refused forms leave nothing behind
        assert [p.name for p in work.iterdir()] == [job.id]


def test_a_failed_audit_says_why_and_deletes_the_upload(app_and_work, tmp_path):
    from starlette.testclient import TestClient

    app, work = app_and_work
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a photo")
    (junk / "empty.jpg").write_bytes(b"")
    with TestClient(app) as client:
        job_url = _post(client, "Alice Example", junk).headers["location"]
        status = _wait(client, job_url)
        assert status["state"] == "failed"
        assert "no usable photo in 'the uploaded photos'" in status["error"]
        assert "notes.txt: not a readable image" in status["error"]
        assert str(work) not in status["error"]  # no server path in what the user reads
        page = client.get(job_url).text
        assert "failed" in page and "empty.jpg" in page and "deleted from this server" in page
        assert client.get(job_url + "/audit.json").status_code == 404
    assert _files_under(work) == []


def test_server_folder_audit_stays_under_the_photo_root(model_dir, people, tmp_path):
    from starlette.testclient import TestClient

    root = people["alice"].parent
    app = create_app(_settings(model_dir, tmp_path / "work", photo_root=root))
    with TestClient(app) as client:
        assert "a folder on this server" in client.get("/").text
        outside = _post(client, "Alice Example", None, folder=str(tmp_path))
        assert outside.status_code == 400 and "not a folder under" in outside.text
        climb = _post(client, "Alice Example", None, folder="../..")
        assert climb.status_code == 400
        job_url = _post(client, "Alice Example", None, folder="alice").headers["location"]
        assert _wait(client, job_url)["state"] == "done"
        result = client.get(job_url + "/audit.json").json()
        assert result["n_usable"] == 4 and result["models"][0]["label"] == "tiny"
        assert "left where they are" in client.get(job_url).text
    assert len(list(people["alice"].iterdir())) == 4  # the server's folder is never deleted


def test_one_audit_with_two_models_of_two_libraries(model_dir, people, tmp_path):
    from starlette.testclient import TestClient
    from test_backends import build_clip  # the tiny transformers CLIP of the golden tests

    hf_dir = build_clip(tmp_path / "hf-clip")
    settings = _settings(model_dir, tmp_path / "work")
    settings.models.append(ModelChoice("hf-tiny", f"hf:{hf_dir}"))
    app = create_app(settings)
    with TestClient(app) as client:
        assert "hf-tiny" in client.get("/").text
        resp = client.post(
            "/audit",
            data={"name": "Alice Example", "model": ["0", "1"]},
            files=_photo_parts(people["alice"]),
            follow_redirects=False,
        )
        status = _wait(client, resp.headers["location"])
        assert status["state"] == "done" and status["done"] == status["total"]
        texts = [s["text"] for s in status["steps"]]
        assert "Loading model tiny" in texts and "Loading model hf-tiny" in texts
        result = client.get(resp.headers["location"] + "/audit.json").json()
        assert [m["label"] for m in result["models"]] == ["tiny", "hf-tiny"]
        hashed = {f["file"] for f in result["models"][1]["provenance"]["model_files"]}
        assert "model.safetensors" in hashed
        page = client.get(resp.headers["location"]).text
        assert page.count('<div class="verdict ') == 2


def test_model_choices_from_the_config(model_dir, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(model_dir, results / "models" / "world-vit")
    config = tmp_path / "config.yaml"
    config.write_text(
        "models:\n"
        "  world-vit: {arch: idia-vit-s, train: {epochs: 1}}\n"
        "  later: {arch: idia-vit-s, train: {epochs: 1}}\n"
        "  laion: {arch: ViT-B-32-quickgelu, pretrained: laion400m_e32}\n"
        "injection:\n  models: {c-vit: {arch: idia-vit-xs}}\n  levels: [2, 1]\n"
    )
    choices, notes = model_choices([f"mine=local:{model_dir}"], config, results)
    assert [(c.label, c.spec) for c in choices] == [
        ("mine", f"local:{model_dir}"),
        ("world-vit", f"local:{results / 'models' / 'world-vit'}"),
        ("laion", "open_clip:ViT-B-32-quickgelu/laion400m_e32"),
    ]
    assert [n.split("'")[1] for n in notes] == ["later", "c-vit-n2", "c-vit-n1"]
    assert all("not trained yet" in n and "snakemake" in n for n in notes)
    with pytest.raises(ValueError, match="share the label"):
        model_choices([f"local:{model_dir}", f"local:{model_dir}"])
    with pytest.raises(ValueError, match="does not exist"):
        model_choices(["local:" + str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="must start with"):
        model_choices(["clip:ViT-B-32"])


def test_cli_serve_checks_its_options_before_serving(tmp_path, capsys):
    assert main(["serve", "--model", f"local:{tmp_path / 'missing'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "no model to offer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    assert "idia serve --config config/config.yaml" in capsys.readouterr().out


def test_namesakes_are_drawn_with_the_servers_seed_and_judged_at_its_alpha(
    model_dir, people, tmp_path
):
    """`idia serve --seed S --alpha A` draws the namesakes with S and calls the test at A, as
    `idia audit` does (the page said seed 0 whatever --seed was)."""
    from starlette.testclient import TestClient

    from idia.names import faker_name_lists
    from idia.namesakes import namesake_pool

    settings = _settings(model_dir, tmp_path / "work", seed=23, namesakes=6, alpha=0.5)
    with TestClient(create_app(settings)) as client:
        job_url = _post(client, "Alice Example", people["alice"]).headers["location"]
        assert _wait(client, job_url)["state"] == "done"
        ns = client.get(job_url + "/audit.json").json()["models"][0]["namesakes"]
        page = client.get(job_url).text
    names, kinds = namesake_pool("Alice Example", 6, 23, *faker_name_lists("en_US"))
    assert ns["seed"] == 23 and [r["name"] for r in ns["names"]] == names
    assert [r["kind"] for r in ns["names"]] == kinds
    assert names != namesake_pool("Alice Example", 6, 0, *faker_name_lists("en_US"))[0]
    assert ns["alpha"] == 0.5 and ns["passed"] == (ns["p_value"] <= 0.5)
    verdict = "passed" if ns["passed"] else "not passed"
    assert ns["outcome"] == f"namesake test: {verdict} at alpha = 0.5"
    assert f"Namesake test: {verdict} at α = 0.5" in page and "seed 23)" in page
