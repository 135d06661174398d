"""Load CLIP models by the workflow's model dicts; a thin layer over :mod:`idia.backends`.

The rules pass ``{"model_dir": DIR}`` (a model the workflow trained), ``{"arch": A,
"pretrained": P}`` (an open_clip pretrained tag or weight file) or ``{"spec": S}`` (any model spec
of :func:`idia.backends.parse_model_spec`); all load into the same :class:`Backend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idia.backends import Backend, load_backend, pick_device, spec_from_dict

#: The loaded model type the attack, audit and utility code take (kept under its old name).
Clip = Backend

__all__ = ["Clip", "load_clip", "pick_device"]


def load_clip(
    *,
    model_dir: str | Path | None = None,
    arch: str | None = None,
    pretrained: str | None = None,
    spec: str | None = None,
    device: str = "auto",
) -> Backend:
    """Load a model trained by the workflow, a pretrained open_clip model, or any ``spec``."""
    model: dict[str, Any] = {
        "spec": spec,
        "model_dir": model_dir,
        "arch": arch,
        "pretrained": pretrained,
    }
    return load_backend(spec_from_dict(model), device=device)
