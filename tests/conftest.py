"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"
# Fixtures that run the whole workflow: a test using one is end to end wherever it lives.
E2E_FIXTURES = frozenset({"tiny_run"})
# Modules whose every test runs a benchmark script (minutes in all): the bench tier.
BENCH_MODULES = frozenset({"test_benchmarks.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test that needs a workflow run in the ``e2e`` tier and every benchmark run in
    the ``bench`` tier, so `make test-fast` never pays for one even when a test lacks the marker."""
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        if item.path.name in BENCH_MODULES:
            item.add_marker(pytest.mark.bench)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialized open_clip model saved in the workflow's model-dir layout."""
    import torch
    from safetensors.torch import save_file

    from idia.compat import import_open_clip

    open_clip = import_open_clip()
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{ARCH_DIR}")
    out = tmp_path_factory.mktemp("model")
    (out / "open_clip_config.json").write_text((ARCH_DIR / "open_clip_config.json").read_text())
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / "open_clip_model.safetensors"))
    return out


@pytest.fixture
def web(monkeypatch, tmp_path):
    """Serve ``{host: folder}`` through the world's proxy for this test; returns the access log.

    The proxy variables are set with monkeypatch, so they are undone after the test."""
    from idia.worldweb import PROXY_VARIABLES, start

    servers = []

    def serve(sites: dict) -> Path:
        log = tmp_path / "access.log"
        proxy, server = start(sites, log=log)
        servers.append(server)
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.setenv(name, "")
        return log

    yield serve
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One uninterrupted run of the tiny world, shared by the end-to-end modules."""
    from tinyworld import snakemake

    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir)
    return workdir
