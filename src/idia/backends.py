"""One model spec string for every CLIP-style model, whatever library holds it (DESIGN §5).

A model to attack is named by one string:

- ``open_clip:ARCH/TAG`` or ``open_clip:ARCH/WEIGHTS_FILE`` — an open_clip architecture with a
  pretrained tag (``open_clip:ViT-B-32-quickgelu/laion400m_e32``) or a weight file;
- ``open_clip:hf-hub:ORG/NAME`` — an open_clip model published on the Hugging Face hub;
- ``hf:ORG/NAME`` or ``hf:DIR`` — a Hugging Face ``transformers`` dual encoder (``CLIPModel``,
  ``SiglipModel``, SigLIP 2 and MetaCLIP 2 through ``AutoModel``), by hub name or saved folder;
- ``local:DIR`` — a model this workflow trained (open_clip ``local-dir:`` layout:
  ``open_clip_config.json`` + ``open_clip_model.safetensors``).

A loaded :class:`Backend` only encodes images and texts, each with its own library's
preprocessing and tokenizer (SigLIP pads every prompt to a fixed length, as it was trained; CLIP
pads to the longest prompt of a batch), so the attack and the statistics never see which library
a model came from. Offline, a hub model that is not in the local cache fails at once with a
message that says how to provide its weights, instead of retrying the network for minutes.
"""

from __future__ import annotations

import os
import re
import socket
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from safetensors import SafetensorError

from idia.compat import ensure_torchvision, import_open_clip

__all__ = [
    "Backend",
    "ModelSpec",
    "OfflineModelError",
    "hub_offline",
    "load_backend",
    "parse_model_spec",
    "pick_device",
    "spec_from_dict",
]

BACKENDS = ("open_clip", "hf", "local")
LOCAL_FILES = ("open_clip_config.json", "open_clip_model.safetensors")
#: SigLIP and SigLIP 2 were trained on prompts padded to this many tokens (their model cards).
SIGLIP_TEXT_LENGTH = 64
_FIXED_LENGTH_TYPES = ("siglip", "siglip2")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EXAMPLES = (
    "open_clip:ViT-B-32-quickgelu/laion400m_e32, open_clip:ViT-B-32/weights.safetensors, "
    "open_clip:hf-hub:ORG/NAME, hf:openai/clip-vit-base-patch32, hf:path/to/saved_model, "
    "local:results/models/NAME"
)


class OfflineModelError(RuntimeError):
    """A hub model is named but the hub cannot be reached and the weights are not cached."""


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: which library, and where its weights come from.

    Exactly one source is set: ``path`` (a folder or a weight file on this machine), ``repo``
    (a hub repository) or ``pretrained`` (an open_clip pretrained tag, with ``arch``).
    """

    backend: str
    arch: str | None = None
    pretrained: str | None = None
    repo: str | None = None
    path: Path | None = None

    def __str__(self) -> str:
        if self.backend == "local":
            return f"local:{self.path}"
        if self.backend == "hf":
            return f"hf:{self.repo or self.path}"
        if self.repo:
            return f"open_clip:hf-hub:{self.repo}"
        return f"open_clip:{self.arch}/{self.path or self.pretrained}"


def _bad(spec: str, why: str) -> ValueError:
    return ValueError(f"model spec {spec!r}: {why}. Examples: {_EXAMPLES}")


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``BACKEND:REST``; a malformed spec raises ValueError saying what is wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "the spec is empty")
    spec = spec.strip()
    backend, sep, rest = spec.partition(":")
    if not sep or backend not in BACKENDS:
        raise _bad(spec, f"it must start with one of {', '.join(b + ':' for b in BACKENDS)}")
    if not rest:
        raise _bad(spec, f"nothing follows {backend + ':'!r}")
    if backend == "local":
        return ModelSpec("local", path=Path(rest))
    if backend == "hf":
        path = Path(rest)
        if path.exists():
            if not path.is_dir():
                raise _bad(spec, f"{rest!r} is a file; hf: takes a folder saved by save_pretrained")
            return ModelSpec("hf", path=path)
        if not _HUB_NAME.match(rest):
            raise _bad(spec, f"{rest!r} is neither an existing folder nor a hub name ORG/NAME")
        return ModelSpec("hf", repo=rest)
    if rest.startswith("hf-hub:"):
        repo = rest.removeprefix("hf-hub:")
        if not _HUB_NAME.match(repo):
            raise _bad(spec, f"{repo!r} is not a hub name ORG/NAME")
        return ModelSpec("open_clip", repo=repo)
    if rest.startswith("local-dir:"):
        return ModelSpec("local", path=Path(rest.removeprefix("local-dir:")))
    arch, sep, source = rest.partition("/")
    if not arch or not sep or not source:
        raise _bad(spec, "open_clip: needs ARCH/TAG or ARCH/WEIGHTS_FILE")
    path = Path(source)
    if path.suffix in (".safetensors", ".bin", ".pt", ".pth") or "/" in source or path.is_file():
        return ModelSpec("open_clip", arch=arch, path=path)
    return ModelSpec("open_clip", arch=arch, pretrained=source)


def spec_from_dict(model: Mapping[str, Any]) -> ModelSpec:
    """The spec behind the workflow's model dicts: ``{"spec": S}``, ``{"model_dir": D}`` or
    ``{"arch": A, "pretrained": P}`` (the forms the rules pass as ``params.model``)."""
    if model.get("spec"):
        return parse_model_spec(str(model["spec"]))
    if model.get("model_dir"):
        return ModelSpec("local", path=Path(model["model_dir"]))
    arch, pretrained = model.get("arch"), model.get("pretrained")
    if not arch or not pretrained:
        raise ValueError(
            f"model {dict(model)!r}: give `spec` (e.g. {_EXAMPLES.split(', ')[0]}), `model_dir`, "
            "or both `arch` and `pretrained`"
        )
    return parse_model_spec(f"open_clip:{arch}/{pretrained}")


# --------------------------------------------------------------------------------------------
# The loaded model
# --------------------------------------------------------------------------------------------


def pick_device(requested: str = "auto") -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class Inputs(dict):
    """Named model inputs of one image (or a batch): collates like a dict, moves like a tensor.

    The attack's photo loader stacks preprocessed images with torch's default collate and then
    calls ``.to(device)``; a transformers processor returns several tensors per image (SigLIP 2:
    patches, their mask and the grid shape), which this keeps together.
    """

    def to(self, device, non_blocking: bool = False) -> Inputs:
        return Inputs({k: v.to(device, non_blocking=non_blocking) for k, v in self.items()})


def _accepted(inputs: Mapping, method) -> dict:
    import inspect

    names = inspect.signature(method).parameters
    return {k: v for k, v in inputs.items() if k in names}


def _pooled(out) -> torch.Tensor:
    """transformers 5 returns an output object from ``get_*_features``; 4.x a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFDualEncoder(torch.nn.Module):
    """A transformers dual encoder behind open_clip's ``encode_image`` / ``encode_text``."""

    def __init__(self, model) -> None:
        super().__init__()
        self.hf = model

    def encode_image(self, inputs: Mapping) -> torch.Tensor:
        method = self.hf.get_image_features
        return _pooled(method(**_accepted(inputs, method)))

    def encode_text(self, tokens: Mapping) -> torch.Tensor:
        method = self.hf.get_text_features
        return _pooled(method(**_accepted(tokens, method)))


@dataclass
class Backend:
    """A loaded model: ``encode_images`` and ``encode_texts`` give L2-normalised embeddings.

    ``model`` (with ``encode_image`` / ``encode_text``), ``preprocess`` (one image → model input)
    and ``tokenizer`` (prompts → model input with ``.to``) are what the attack's batched encoders
    use; ``files`` are the weight files on this machine, hashed into the audit's provenance.
    """

    name: str
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    spec: ModelSpec | None = None
    files: list[Path] = field(default_factory=list)

    def encode_images(self, images: Sequence, batch_size: int = 64) -> torch.Tensor:
        """PIL images or paths → ``[N, D]`` float32 embeddings of unit length, in order."""
        from idia.attack import load_image

        images = list(images)
        if not images:
            raise ValueError("encode_images got no images")
        chunks = []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                batch = [
                    self.preprocess(im if hasattr(im, "convert") else load_image(im))
                    for im in images[s : s + batch_size]
                ]
                x = torch.utils.data.default_collate(batch).to(self.device)
                chunks.append(_unit(self.model.encode_image(x)))
        return torch.cat(chunks)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Prompts → ``[N, D]`` float32 embeddings of unit length, in order."""
        texts = [str(t) for t in texts]
        if not texts:
            raise ValueError("encode_texts got no texts")
        chunks = []
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                tokens = self.tokenizer(texts[s : s + batch_size]).to(self.device)
                chunks.append(_unit(self.model.encode_text(tokens)))
        return torch.cat(chunks)


def _unit(x: torch.Tensor) -> torch.Tensor:
    x = x.float()
    return (x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@cache
def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_behind_proxy() -> bool:
    """True when an HTTPS proxy is configured (``HTTPS_PROXY``, ``ALL_PROXY``) for the hub.

    Behind such a proxy a direct socket to the hub may be blocked while the library, which
    goes through the proxy, reaches it: the probe cannot tell, so the library is left to try.
    """
    import urllib.request

    from huggingface_hub import constants

    proxies = urllib.request.getproxies_environment()
    if not (proxies.get("https") or proxies.get("all")):
        return False
    host = urlparse(constants.ENDPOINT).hostname or ""
    return not urllib.request.proxy_bypass(host)  # NO_PROXY, read from the environment


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set or the hub does not answer within seconds.

    Behind an HTTPS proxy the direct probe says nothing, and the hub counts as reachable.
    """
    return _env_offline() or (not _hub_behind_proxy() and not _hub_reachable())


def _offline_error(spec: ModelSpec, what: str, repo: str | None = None) -> OfflineModelError:
    why = "HF_HUB_OFFLINE is set" if _env_offline() else "the model hub cannot be reached"
    if spec.backend == "hf":
        how = (
            f"on a connected machine run `hf download {spec.repo} --local-dir DIR` "
            "(or save the model with save_pretrained), copy DIR here and pass `hf:DIR`"
        )
    elif spec.repo:
        how = (
            f"on a connected machine run `hf download {spec.repo} --local-dir DIR`, copy DIR "
            "here and pass `local:DIR` (it holds open_clip_config.json and the weights), or "
            f"pass the weight file alone as `open_clip:ARCH/FILE`"
        )
    else:
        source = (
            f"`hf download {repo} open_clip_model.safetensors --local-dir DIR`"
            if repo
            else ("the URL of open_clip.get_pretrained_cfg(ARCH, TAG)")
        )
        how = (
            f"on a connected machine download the weight file ({source}), copy it here and "
            f"pass `open_clip:{spec.arch}/FILE`"
        )
    return OfflineModelError(
        f"model {str(spec)!r}: {what} is not in the local cache and {why}. To provide the "
        f"weights: {how}; or copy a Hugging Face cache that holds it to ~/.cache/huggingface "
        "and set HF_HUB_OFFLINE=1."
    )


def _cached(repo: str, filenames: Sequence[str]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        hit = try_to_load_from_cache(repo, filename)
        if isinstance(hit, str) and Path(hit).is_file():
            return Path(hit)
    return None


_OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def open_clip_cached_file(arch: str, tag: str) -> Path | None:
    """The cached weight file of an open_clip pretrained tag, or None (provenance, offline)."""
    cfg = import_open_clip().get_pretrained_cfg(arch, tag) or {}
    repo = (cfg.get("hf_hub") or "").strip("/")
    if repo:
        return _cached(repo, _OPEN_CLIP_WEIGHTS)
    url = cfg.get("url") or ""
    hit = Path("~/.cache/clip").expanduser() / Path(urlparse(url).path).name
    return hit if url and hit.is_file() else None


def _load_open_clip(spec: ModelSpec, device: str) -> Backend:
    open_clip = import_open_clip()
    kwargs: dict[str, Any] = {}
    files: list[Path]
    pretrained: str | None
    if spec.backend == "local":
        assert spec.path is not None  # parse_model_spec sets a path for every local: spec
        missing = [spec.path / f for f in LOCAL_FILES if not (spec.path / f).is_file()]
        if missing:
            raise FileNotFoundError(
                f"model checkpoint incomplete: {missing[0]} is missing. Pass a folder with "
                f"{' and '.join(LOCAL_FILES)}, or re-run the training rule "
                f"(snakemake --forcerun train_clip) to rebuild {spec.path}."
            )
        name, pretrained = f"local-dir:{spec.path}", None
        files = [spec.path / f for f in LOCAL_FILES]
    elif spec.repo:
        name, pretrained = f"hf-hub:{spec.repo}", None
        files = []
        if hub_offline():
            weights = _cached(spec.repo, _OPEN_CLIP_WEIGHTS)
            config = _cached(spec.repo, ["open_clip_config.json"])
            if weights is None or config is None:
                raise _offline_error(spec, f"hub repository {spec.repo!r}")
            name, files = f"local-dir:{config.parent}", [config, weights]
    else:
        assert spec.arch is not None  # parse_model_spec sets it for ARCH/TAG and ARCH/FILE
        name = spec.arch
        if spec.arch not in open_clip.list_models():
            raise ValueError(
                f"model spec {str(spec)!r}: open_clip has no architecture {spec.arch!r}; "
                "`python -c 'import open_clip; print(open_clip.list_models())'` lists them"
            )
        if spec.path is not None:
            if not spec.path.is_file():
                raise FileNotFoundError(
                    f"model spec {str(spec)!r}: weight file {str(spec.path)!r} does not exist"
                )
            pretrained, files = str(spec.path), [spec.path]
        else:
            tags = open_clip.list_pretrained_tags_by_model(spec.arch)
            if spec.pretrained not in tags:
                raise ValueError(
                    f"model spec {str(spec)!r}: {spec.arch!r} has no pretrained tag "
                    f"{spec.pretrained!r}; known tags: {', '.join(tags) or 'none'} "
                    "(or give a weight file: open_clip:ARCH/FILE)"
                )
            pretrained = str(spec.pretrained)
            cached = open_clip_cached_file(spec.arch, pretrained)
            files = [cached] if cached else []
            if cached is None and hub_offline():
                repo = (open_clip.get_pretrained_cfg(spec.arch, pretrained) or {}).get("hf_hub")
                raise _offline_error(
                    spec, f"pretrained tag {pretrained!r}", (repo or "").strip("/")
                )
            if cached is not None and hub_offline():
                # Load the cached file directly (open_clip would ask the hub first), with the
                # tag's preprocessing. The activation stays the architecture's, as open_clip
                # keeps it for the tag: ViT-B-32/laion400m_e32 runs without QuickGELU (the
                # tag's training used it; the right spec names ViT-B-32-quickgelu), so one
                # spec gives the same embeddings online and offline.
                cfg = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
                arch_gelu = bool((open_clip.get_model_config(spec.arch) or {}).get("quick_gelu"))
                if bool(cfg.get("quick_gelu")) != arch_gelu:
                    warnings.warn(
                        f"model spec {str(spec)!r}: the tag {pretrained!r} was trained "
                        f"{'with' if cfg.get('quick_gelu') else 'without'} QuickGELU but "
                        f"{spec.arch!r} runs {'with' if arch_gelu else 'without'} it (as open_clip "
                        "loads it); name the architecture that matches the tag (for QuickGELU "
                        "its -quickgelu variant) to audit the model as it was trained",
                        UserWarning,
                        stacklevel=2,
                    )
                pretrained = str(cached)
                kwargs = {
                    "image_mean": cfg.get("mean"),
                    "image_std": cfg.get("std"),
                    "image_interpolation": cfg.get("interpolation"),
                    "image_resize_mode": cfg.get("resize_mode"),
                }
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device, **kwargs
        )
    except (OSError, RuntimeError, ValueError, SafetensorError) as err:
        raise RuntimeError(
            f"could not load open_clip model {str(spec)!r} ({', '.join(map(str, files)) or name})"
            f": {err}. If a weight file is corrupt or truncated, download or retrain it."
        ) from err
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return Backend(str(spec), model, preprocess, tokenizer, device, spec, files)


def _hf_weight_files(folder: Path) -> list[Path]:
    names = ("*.safetensors", "*.bin", "config.json")
    return sorted({p for pattern in names for p in folder.glob(pattern) if p.is_file()})


def _load_hf(spec: ModelSpec, device: str) -> Backend:
    ensure_torchvision()
    from transformers import AutoModel, AutoProcessor

    kwargs: dict[str, Any] = {}
    folder: Path | None
    if spec.path is not None:
        if not (spec.path / "config.json").is_file():
            raise FileNotFoundError(
                f"model spec {str(spec)!r}: {spec.path / 'config.json'} is missing; pass a "
                "folder written by save_pretrained (config.json, weights, tokenizer files)"
            )
        source, folder = str(spec.path), spec.path
    else:
        source = str(spec.repo)
        config = _cached(source, ["config.json"])
        if hub_offline():
            if config is None:
                raise _offline_error(
                    spec, f"hub model {source!r} (and no folder of that name here)"
                )
            kwargs["local_files_only"] = True
        folder = config.parent if config else None
    try:
        model = AutoModel.from_pretrained(source, **kwargs)
        processor = AutoProcessor.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        raise RuntimeError(f"could not load transformers model {str(spec)!r}: {err}") from err
    if folder is None:  # downloaded just now
        cached = _cached(source, ["config.json"])
        folder = cached.parent if cached else None
    for method in ("get_image_features", "get_text_features"):
        if not hasattr(model, method):
            raise ValueError(
                f"model spec {str(spec)!r}: {type(model).__name__} has no {method}; hf: takes "
                "CLIP-style dual encoders (CLIPModel, SiglipModel, Siglip2Model, MetaClip2Model)"
            )
    model.to(device).eval()
    text_cfg = getattr(model.config, "text_config", model.config)
    max_len = int(getattr(text_cfg, "max_position_embeddings", 77))
    if model.config.model_type in _FIXED_LENGTH_TYPES:
        max_len = min(max_len, SIGLIP_TEXT_LENGTH)
        padding: bool | str = "max_length"
    else:
        padding = True

    # Through the processor, as the model cards call it: its call-time defaults are part of the
    # model's preprocessing (SigLIP 2's processor, for one, sets the patch size and count).
    def tokenize(texts: Sequence[str]):
        return processor(
            text=list(texts),
            padding=padding,
            max_length=max_len,
            truncation=True,
            return_tensors="pt",
        )

    def preprocess(image) -> Inputs:
        out = processor(images=image, return_tensors="pt")
        return Inputs({k: v[0] for k, v in out.items() if isinstance(v, torch.Tensor)})

    files = _hf_weight_files(folder) if folder else []
    return Backend(str(spec), HFDualEncoder(model), preprocess, tokenize, device, spec, files)


def load_backend(model: str | ModelSpec | Mapping[str, Any], device: str = "auto") -> Backend:
    """Load a model named by a spec string, a parsed spec or a workflow model dict."""
    if isinstance(model, str):
        spec = parse_model_spec(model)
    elif isinstance(model, ModelSpec):
        spec = model
    else:
        spec = spec_from_dict(model)
    device = pick_device(device)
    if spec.backend == "hf":
        return _load_hf(spec, device)
    return _load_open_clip(spec, device)
