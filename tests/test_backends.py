"""Golden tests of the model backends, offline, on tiny randomly initialised models.

For each backend our embeddings must equal the library's own forward pass on the same inputs,
and a whole ``idia audit`` must run through it. The tiny transformers models are built from
configs and saved with ``save_pretrained``; their tokenizers are built here too: CLIP's from a
small BPE vocabulary, SigLIP's from a SentencePiece model trained on a few sentences (the real
``spiece.model`` format), SigLIP 2's (Gemma) from a small BPE vocabulary, MetaCLIP 2's (XLM-R)
from a small unigram vocabulary.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import string
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from idia.attack import PAPER_TEMPLATES, encode_photos, encode_prompts
from idia.backends import (
    Backend,
    ModelSpec,
    OfflineModelError,
    load_backend,
    parse_model_spec,
    spec_from_dict,
)
from idia.cli import main
from idia.compat import ensure_torchvision, import_open_clip
from idia.render import render_face, sample_identity

ensure_torchvision()
transformers = pytest.importorskip("transformers")

PROMPTS = ["a photo of Anna Lee", "Zoë O'Brien", "an image of the person named Jordan Pigott", "x"]
CORPUS = [
    "a photo of a person named anna lee",
    "an image of zoe obrien at a gala",
    "the name of the person is jordan pigott",
    "actor actress in a suit in a dress",
    "a cool cropped black and white colored photo",
]
ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"


# --------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------


def _bpe_vocab(end_of_word: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Characters (and their end-of-word forms) plus a few merges learned from nothing."""
    chars = string.ascii_lowercase + string.ascii_uppercase + "ëéö'.-!0123456789"
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
        if end_of_word:
            vocab[c + end_of_word] = len(vocab)
    merges = [("o", "n" + end_of_word), ("t", "h"), ("th", "e" + end_of_word), ("a", "n")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def _text_cfg(vocab_size: int, max_len: int, **ids) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=max_len,
        **ids,
    )


_VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
)


def _save_with_clip_processor(model, tok, out: Path) -> Path:
    """Save a CLIP-style model with CLIP's image processor at 32 px and its tokenizer."""
    images = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    transformers.CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    model.save_pretrained(out)
    return out


def build_clip(out: Path) -> Path:
    vocab, merges = _bpe_vocab("</w>")
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = transformers.CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    eos = vocab["<|endoftext|>"]
    cfg = transformers.CLIPConfig(
        text_config=_text_cfg(
            len(vocab), 77, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos - 1
        ),
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(cfg)
    return _save_with_clip_processor(model, tok, out)


def build_siglip(out: Path) -> Path:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10),
        model_writer=buf,
        vocab_size=60,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
        seed_sentencepiece_size=1000,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "spiece.model").write_bytes(buf.getvalue())
    tok = transformers.SiglipTokenizer(vocab_file=str(out / "spiece.model"), model_max_length=64)
    cfg = transformers.SiglipConfig(
        text_config=_text_cfg(len(tok), 64, pad_token_id=0, eos_token_id=1, bos_token_id=None),
        vision_config=_VISION,
    )
    torch.manual_seed(1)
    model = transformers.SiglipModel(cfg)
    images = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    transformers.SiglipProcessor(image_processor=images, tokenizer=tok).save_pretrained(out)
    model.save_pretrained(out)
    return out


def build_siglip2(out: Path) -> Path:
    vocab, merges = _bpe_vocab("")
    for special in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "▁"):
        vocab.setdefault(special, len(vocab))
    tok = transformers.GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=64)
    cfg = transformers.Siglip2Config(
        text_config=_text_cfg(
            len(vocab),
            64,
            pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["<eos>"],
            bos_token_id=vocab["<bos>"],
        ),
        vision_config={**_VISION, "patch_size": 16, "num_patches": 256},
    )
    torch.manual_seed(2)
    model = transformers.Siglip2Model(cfg)
    # the processor's call sets 16-pixel patches, 256 of them, whatever the image processor says
    images = transformers.Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    transformers.Siglip2Processor(image_processor=images, tokenizer=tok).save_pretrained(out)
    model.save_pretrained(out)
    return out


def build_metaclip2(out: Path) -> Path:
    """MetaCLIP 2: CLIP's architecture with a multilingual (XLM-R, unigram) tokenizer."""
    letters = string.ascii_lowercase + "ëéö"
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(c, -1.0) for c in letters + string.ascii_uppercase + "'.-!"]
    vocab += [("▁" + c, -2.0) for c in letters + string.ascii_uppercase] + [("<mask>", 0.0)]
    tok = transformers.XLMRobertaTokenizer(vocab=vocab, model_max_length=77)
    cfg = transformers.MetaClip2Config(
        text_config=_text_cfg(len(vocab), 77, bos_token_id=0, pad_token_id=1, eos_token_id=2),
        vision_config=_VISION,
        projection_dim=16,
    )
    torch.manual_seed(3)
    model = transformers.MetaClip2Model(cfg)
    return _save_with_clip_processor(model, tok, out)


HF_BUILDERS = {
    "clip": build_clip,
    "siglip": build_siglip,
    "siglip2": build_siglip2,
    "metaclip2": build_metaclip2,
}


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: build(root / kind) for kind, build in HF_BUILDERS.items()}


@pytest.fixture(scope="module")
def open_clip_file(tmp_path_factory, model_dir) -> tuple[str, Path]:
    """The tiny architecture registered with open_clip by name, and a weight file for it."""
    open_clip = import_open_clip()
    configs = tmp_path_factory.mktemp("configs")
    cfg = json.loads((ARCH_DIR / "open_clip_config.json").read_text())["model_cfg"]
    (configs / "idia-test-vit-xs.json").write_text(json.dumps(cfg))
    # the same weights with QuickGELU, as open_clip names ViT-B-32 and ViT-B-32-quickgelu
    quick = {**cfg, "quick_gelu": True}
    (configs / "idia-test-vit-xs-quickgelu.json").write_text(json.dumps(quick))
    open_clip.add_model_config(configs)
    weights = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    shutil.copy(model_dir / "open_clip_model.safetensors", weights)
    return "idia-test-vit-xs", weights


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for h, w in ((40, 52), (64, 32), (33, 33))
    ]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    params = sample_identity(np.random.default_rng(5))
    for j in range(3):
        face = render_face(params, np.random.default_rng([5, j]), 96)
        Image.fromarray(face).save(folder / f"face_{j}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def _library_forward(folder: Path, images, texts, **text_kwargs):
    """transformers' own processor and forward pass, as its model cards show it."""
    model = transformers.AutoModel.from_pretrained(folder).eval()
    processor = transformers.AutoProcessor.from_pretrained(folder)
    inputs = processor(text=texts, images=images, return_tensors="pt", **text_kwargs)
    with torch.no_grad():
        out = model(**inputs)
    return out.image_embeds, out.text_embeds, model, inputs


# How each model card tells users to call the processor.
CARD_TEXT_KWARGS = {
    "clip": {"padding": True},
    "metaclip2": {"padding": True},
    "siglip": {"padding": "max_length", "max_length": 64},
    "siglip2": {"padding": "max_length", "max_length": 64},
}


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


def test_parse_model_spec_forms(tmp_path):
    assert parse_model_spec("open_clip:ViT-B-32-quickgelu/laion400m_e32") == ModelSpec(
        "open_clip", arch="ViT-B-32-quickgelu", pretrained="laion400m_e32"
    )
    spec = parse_model_spec("open_clip:ViT-B-32//abs/w.safetensors")
    assert spec.arch == "ViT-B-32" and spec.path == Path("/abs/w.safetensors")
    assert parse_model_spec("open_clip:RN50/w.bin").path == Path("w.bin")
    assert parse_model_spec("open_clip:hf-hub:timm/x.y").repo == "timm/x.y"
    assert parse_model_spec("hf:google/siglip-base-patch16-224").repo == (
        "google/siglip-base-patch16-224"
    )
    assert parse_model_spec(f"hf:{tmp_path}") == ModelSpec("hf", path=tmp_path)
    assert parse_model_spec("local:results/models/tiny") == ModelSpec(
        "local", path=Path("results/models/tiny")
    )
    for text in ("open_clip:A/t", "open_clip:hf-hub:o/n", "hf:o/n", "local:d"):
        assert str(parse_model_spec(text)) == text


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "empty"),
        ("ViT-B-32/openai", "must start with"),
        ("torch:x", "must start with"),
        ("hf:", "nothing follows"),
        ("open_clip:ViT-B-32", "ARCH/TAG"),
        ("open_clip:/openai", "ARCH/TAG"),
        ("open_clip:hf-hub:nope", "not a hub name"),
        ("hf:not/a/hub/name", "neither an existing folder nor a hub name"),
    ],
)
def test_parse_model_spec_rejects_malformed(spec, why):
    with pytest.raises(ValueError, match=why) as err:
        parse_model_spec(spec)
    assert "Examples:" in str(err.value)


def test_workflow_dicts_map_to_specs():
    assert spec_from_dict({"model_dir": "results/models/tiny"}) == parse_model_spec(
        "local:results/models/tiny"
    )
    assert spec_from_dict({"arch": "RN50", "pretrained": "openai"}) == parse_model_spec(
        "open_clip:RN50/openai"
    )
    assert spec_from_dict({"spec": "hf:o/n"}) == parse_model_spec("hf:o/n")
    with pytest.raises(ValueError, match="both `arch` and `pretrained`"):
        spec_from_dict({"arch": "RN50"})


# --------------------------------------------------------------------------------------------
# Golden: our embeddings are the library's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(HF_BUILDERS))
def test_hf_backend_equals_library_forward(kind, hf_dirs, images):
    folder = hf_dirs[kind]
    backend = load_backend(f"hf:{folder}", device="cpu")
    assert isinstance(backend, Backend) and backend.name == f"hf:{folder}"
    assert {f.name for f in backend.files} >= {"config.json", "model.safetensors"}
    ref_img, ref_txt, _, _ = _library_forward(folder, images, PROMPTS, **CARD_TEXT_KWARGS[kind])
    ours_img = backend.encode_images(images)
    ours_txt = backend.encode_texts(PROMPTS)
    torch.testing.assert_close(ours_img, ref_img, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_txt, ref_txt, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_txt.norm(dim=-1), torch.ones(len(PROMPTS)))
    # the attack's batched encoders (what the audit and the workflow run) give the same numbers
    paths = []
    for i, im in enumerate(images):
        paths.append(folder.parent / f"{kind}_{i}.png")
        im.save(paths[-1])
    torch.testing.assert_close(backend.encode_images(paths), ref_img, rtol=1e-5, atol=1e-5)
    emb = encode_photos(backend.model, backend.preprocess, paths, batch_size=2, progress=False)
    torch.testing.assert_close(torch.from_numpy(emb), ref_img, rtol=1e-5, atol=1e-5)
    prompts = encode_prompts(
        backend.model, backend.tokenizer, PROMPTS[:2], ["{}"], batch_size=1, progress=False
    )
    torch.testing.assert_close(torch.from_numpy(prompts[0]), ref_txt[:2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["siglip", "siglip2"])
def test_siglip_padding_matters_and_is_fixed_length(kind, hf_dirs, images):
    """Dynamic padding (right for CLIP) gives other SigLIP embeddings: the test would catch it."""
    backend = load_backend(f"hf:{hf_dirs[kind]}", device="cpu")
    tokens = backend.tokenizer(PROMPTS)
    assert tokens["input_ids"].shape == (len(PROMPTS), 64)
    _, wrong, _, _ = _library_forward(hf_dirs[kind], images, PROMPTS, padding=True)
    ours = backend.encode_texts(PROMPTS)
    assert not torch.allclose(ours, wrong, atol=1e-3)
    assert (ours - wrong).norm(dim=-1).max() > 1e-2


def test_clip_pads_dynamically(hf_dirs):
    backend = load_backend(f"hf:{hf_dirs['clip']}", device="cpu")
    tokens = backend.tokenizer(PROMPTS)
    longest = max(len(backend.tokenizer([p])["input_ids"][0]) for p in PROMPTS)
    assert tokens["input_ids"].shape == (len(PROMPTS), longest) and longest < 77


def test_missing_normalisation_would_fail(hf_dirs, images):
    """The raw projected features differ from the unit vectors the attack needs."""
    _, ref_txt, model, inputs = _library_forward(hf_dirs["clip"], images, PROMPTS, padding=True)
    with torch.no_grad():
        raw = model.get_text_features(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        )
    raw = raw if isinstance(raw, torch.Tensor) else raw.pooler_output
    assert not torch.allclose(raw, ref_txt, atol=1e-3)
    torch.testing.assert_close(raw / raw.norm(dim=-1, keepdim=True), ref_txt)


def _open_clip_reference(arch: str, pretrained: str | Path, images, texts, **kwargs):
    """open_clip's own model, preprocessing, tokenizer and forward pass, built apart from our
    backend: a wrong preprocess, tokenizer or normalisation in the backend fails against it."""
    open_clip = import_open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(
        arch, pretrained=str(pretrained), **kwargs
    )
    tokenizer = open_clip.get_tokenizer(arch)
    model.eval()
    with torch.no_grad():
        out = model(torch.stack([preprocess(im) for im in images]), tokenizer(texts))
    out = out if isinstance(out, dict) else {"image_features": out[0], "text_features": out[1]}
    return out["image_features"], out["text_features"]


def test_local_backend_equals_open_clip_forward(open_clip_file, model_dir, images):
    arch, weights = open_clip_file  # the same architecture and weights under a plain name
    backend = load_backend(f"local:{model_dir}", device="cpu")
    assert [f.name for f in backend.files] == [
        "open_clip_config.json",
        "open_clip_model.safetensors",
    ]
    # the folder's preprocess_cfg (mean 0.5, std 0.25) is part of the model
    pp = json.loads((model_dir / "open_clip_config.json").read_text())["preprocess_cfg"]
    ref_img, ref_txt = _open_clip_reference(
        arch, weights, images, PROMPTS, image_mean=pp["mean"], image_std=pp["std"]
    )
    torch.testing.assert_close(backend.encode_images(images), ref_img, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(backend.encode_texts(PROMPTS), ref_txt, rtol=1e-5, atol=1e-5)
    # the reference would catch a backend that dropped the folder's preprocessing
    default_img, _ = _open_clip_reference(arch, weights, images, PROMPTS)
    assert not torch.allclose(default_img, ref_img, atol=1e-3)
    # the workflow's dict form loads the same model
    same = load_backend({"model_dir": str(model_dir)}, device="cpu")
    torch.testing.assert_close(same.encode_texts(PROMPTS), ref_txt, rtol=1e-5, atol=1e-5)


def test_open_clip_weight_file_equals_local_dir(open_clip_file, model_dir, images):
    arch, weights = open_clip_file
    backend = load_backend(f"open_clip:{arch}/{weights}", device="cpu")
    assert backend.files == [weights]
    ref_img, ref_txt = _open_clip_reference(arch, weights, images, PROMPTS)
    torch.testing.assert_close(backend.encode_images(images), ref_img, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(backend.encode_texts(PROMPTS), ref_txt, rtol=1e-5, atol=1e-5)
    local = load_backend(f"local:{model_dir}", device="cpu")
    torch.testing.assert_close(backend.encode_texts(PROMPTS), local.encode_texts(PROMPTS))


# --------------------------------------------------------------------------------------------
# Offline hub models fail fast, and say what to do
# --------------------------------------------------------------------------------------------


def test_offline_hf_hub_model_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OfflineModelError) as err:
        load_backend("hf:idia-test/not-cached-anywhere", device="cpu")
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "hf:DIR" in msg and "idia-test/not-cached-anywhere" in msg


def test_offline_open_clip_models_fail_fast_with_advice(monkeypatch):
    from idia.backends import open_clip_cached_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if open_clip_cached_file("ViT-B-32", "laion2b_s34b_b79k") is not None:
        pytest.skip("the weights are cached on this machine")
    with pytest.raises(OfflineModelError, match=r"open_clip:ViT-B-32/FILE"):
        load_backend("open_clip:ViT-B-32/laion2b_s34b_b79k", device="cpu")
    with pytest.raises(OfflineModelError, match="idia-test/nothing"):
        load_backend("open_clip:hf-hub:idia-test/nothing", device="cpu")
    with pytest.raises(ValueError, match="no pretrained tag 'nope'"):
        load_backend("open_clip:ViT-B-32/nope", device="cpu")
    with pytest.raises(ValueError, match="no architecture"):
        load_backend("open_clip:No-Such-Arch/openai", device="cpu")


def test_cli_offline_hub_model_exits_2(photo_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(
        ["audit", "--photos", str(photo_dir), "--name", "Anna Lee", "--model", "hf:idia-test/x"]
        + ["--pool-size", "10", "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "hf:DIR" in err and "Traceback" not in err


def _no_hub(monkeypatch) -> None:
    """Offline for our code (``HF_HUB_OFFLINE``) and for huggingface_hub, transformers and
    open_clip, which read the variable once at import: any request to the hub now raises."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_a_proxy_keeps_the_socket_probe_from_declaring_the_hub_offline(monkeypatch):
    """Behind an HTTPS proxy a direct socket may fail while the library reaches the hub."""
    from huggingface_hub import constants

    from idia.backends import _hub_reachable, hub_offline

    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    for var in ("NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:  # a port of this machine that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"https://127.0.0.1:{port}")
    _hub_reachable.cache_clear()
    try:
        assert hub_offline()  # no proxy: the refused socket decides
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(var, "http://proxy.invalid:3128")
            assert not hub_offline(), var
            monkeypatch.delenv(var)
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the hub bypasses the proxy: probe again
        assert hub_offline()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.delenv("NO_PROXY")
        assert hub_offline()  # the variable still wins over a proxy
    finally:
        _hub_reachable.cache_clear()


def _register_tag(monkeypatch, arch: str, tag: str, cfg: dict) -> None:
    """A pretrained tag for ``arch`` in open_clip's registry, for this test only.

    open_clip has no public call to add a tag; its registry is the dict ``_PRETRAINED``."""
    import open_clip.pretrained as registry

    monkeypatch.setitem(registry._PRETRAINED, arch, {tag: cfg})


def test_offline_cached_pretrained_tag_equals_open_clip_forward(
    open_clip_file, images, tmp_path, monkeypatch
):
    """``open_clip:ARCH/TAG`` offline loads the cached file by hand (with the tag's mean, std,
    interpolation and resize mode): it must give what open_clip gives for the same tag."""
    from huggingface_hub import constants

    from idia.backends import open_clip_cached_file

    arch, weights = open_clip_file
    tag_cfg = {
        "url": "",
        "hf_hub": "idia-test/tiny-tag/",  # the model id, weights under open_clip's default names
        "mean": (0.3, 0.4, 0.5),
        "std": (0.2, 0.25, 0.3),
        "interpolation": "bilinear",
        "resize_mode": "squash",
        "quick_gelu": True,
    }
    for name in (arch, f"{arch}-quickgelu"):
        _register_tag(monkeypatch, name, "tiny_e1", tag_cfg)
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    shutil.copy(weights, snapshot / "open_clip_model.safetensors")
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "idia-test/tiny-tag", snapshot)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    _no_hub(monkeypatch)

    texts = {}
    for name in (arch, f"{arch}-quickgelu"):
        cached = open_clip_cached_file(name, "tiny_e1")
        assert cached is not None and cached.name == "open_clip_model.safetensors"
        # the plain architecture runs without the tag's QuickGELU: open_clip and we both say so
        mismatch = name == arch
        with pytest.warns(UserWarning, match="QuickGELU") if mismatch else nullcontext():
            backend = load_backend(f"open_clip:{name}/tiny_e1", device="cpu")
        assert backend.files == [cached]  # the cached file's hash goes into the provenance
        with pytest.warns(UserWarning, match="QuickGELU mismatch") if mismatch else nullcontext():
            ref_img, ref_txt = _open_clip_reference(name, "tiny_e1", images, PROMPTS)
        torch.testing.assert_close(backend.encode_images(images), ref_img, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(backend.encode_texts(PROMPTS), ref_txt, rtol=1e-5, atol=1e-5)
        texts[name] = ref_txt
    # the comparison has teeth: the tag's preprocessing and the activation both change the numbers
    plain_img, _ = _open_clip_reference(f"{arch}-quickgelu", weights, images, PROMPTS)
    ours = load_backend(f"open_clip:{arch}-quickgelu/tiny_e1", device="cpu")
    ours_img = ours.encode_images(images)
    assert not torch.allclose(plain_img, ours_img, atol=1e-3)
    assert not torch.allclose(texts[arch], texts[f"{arch}-quickgelu"], atol=1e-3)


# --------------------------------------------------------------------------------------------
# A whole audit through every backend
# --------------------------------------------------------------------------------------------


def test_cli_audit_through_every_backend(
    hf_dirs, open_clip_file, model_dir, photo_dir, tmp_path, monkeypatch
):
    _no_hub(monkeypatch)  # offline even on a machine that reaches the hub
    arch, weights = open_clip_file
    specs = [f"hf:{hf_dirs[k]}" for k in sorted(HF_BUILDERS)] + [
        f"open_clip:{arch}/{weights}",
        f"local:{model_dir}",
    ]
    out = tmp_path / "out"
    argv = ["audit", "--photos", str(photo_dir), "--name", "Anna Lee", "--pool-size", "20"]
    for spec in specs:
        argv += ["--model", spec]
    assert main([*argv, "--out", str(out), "--tau", "3", "--model-dir", str(model_dir)]) == 0
    result = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    models = result["models"]
    assert [m["model"] for m in models] == [*specs, f"local:{model_dir}"]
    assert result["n_usable"] == 3 and result["problems"][0]["path"].endswith("broken.jpg")
    for res in models:
        assert res["n_templates"] == len(PAPER_TEMPLATES) and res["tau"] == 3
        assert res["member"] == (res["vote_score"] >= 3) and 0 < res["p_value"] <= 1
        assert res["provenance"]["model_files"], res["model"]
    # --model local:DIR and --model-dir DIR are the same model: the same verdict and evidence
    assert models[-2]["templates"] == models[-1]["templates"]
    assert models[-2]["p_value"] == models[-1]["p_value"]
    # different backends give different evidence (their embeddings differ)
    assert len({m["mean_margin"] for m in models[:5]}) == 5
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert all(f"hf:{hf_dirs[k]}" in page for k in HF_BUILDERS)


def _fake_hub_cache(cache: Path, repo: str, folder: Path) -> None:
    """Lay ``folder``'s files out as the hub cache holds a downloaded repository."""
    rev = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(rev)
    shutil.copytree(folder, root / "snapshots" / rev)


def test_offline_models_in_the_hub_cache_load_without_network(
    hf_dirs, model_dir, images, tmp_path, monkeypatch
):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "idia-test/tiny-clip", hf_dirs["clip"])
    _fake_hub_cache(cache, "idia-test/tiny-open-clip", model_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = load_backend("hf:idia-test/tiny-clip", device="cpu")
    local = load_backend(f"hf:{hf_dirs['clip']}", device="cpu")
    torch.testing.assert_close(hub.encode_texts(PROMPTS), local.encode_texts(PROMPTS))
    assert "model.safetensors" in {f.name for f in hub.files}
    oc = load_backend("open_clip:hf-hub:idia-test/tiny-open-clip", device="cpu")
    ref = load_backend(f"local:{model_dir}", device="cpu")
    torch.testing.assert_close(oc.encode_images(images), ref.encode_images(images))
    assert [f.name for f in oc.files] == ["open_clip_config.json", "open_clip_model.safetensors"]
