"""Load CLIP models: ones trained by the workflow (open_clip ``local-dir:``) and pretrained ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idia.compat import import_open_clip


@dataclass
class Clip:
    name: str
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def load_clip(
    *,
    model_dir: str | Path | None = None,
    arch: str | None = None,
    pretrained: str | None = None,
    device: str = "auto",
) -> Clip:
    """Load a model trained by the workflow (``model_dir``) or a pretrained open_clip model."""
    open_clip = import_open_clip()
    device = pick_device(device)
    if model_dir is not None:
        model_dir = Path(model_dir)
        config = model_dir / "open_clip_config.json"
        weights = model_dir / "open_clip_model.safetensors"
        for path in (config, weights):
            if not path.is_file():
                raise FileNotFoundError(
                    f"model checkpoint incomplete: {path} is missing. Re-run the training rule "
                    f"(snakemake --forcerun train_clip) to rebuild {model_dir}."
                )
        name = f"local-dir:{model_dir}"
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
        tokenizer = open_clip.get_tokenizer(name)
    else:
        if not arch or not pretrained:
            raise ValueError("a pretrained model needs both `arch` and `pretrained` in the config")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=pretrained, device=device
            )
        except Exception as err:  # the hub is unreachable, or the tag is unknown
            raise RuntimeError(
                f"could not load pretrained open_clip model {arch!r} with weights "
                f"{pretrained!r}: {err}\nOn a machine without internet, download the weights "
                "once where the model hub is reachable (they are cached under "
                "~/.cache/huggingface), copy the cache here and set HF_HUB_OFFLINE=1."
            ) from err
        tokenizer = open_clip.get_tokenizer(arch)
        name = f"{arch}:{pretrained}"
    model.eval()
    return Clip(name=name, model=model, preprocess=preprocess, tokenizer=tokenizer, device=device)
