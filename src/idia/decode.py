"""Batched photo decoding and CLIP preprocessing on the accelerator.

On a GPU the attack's photo encoder was decode-bound: PIL decoded and resized every JPEG in CPU
workers at ~1,400 photos/s while ViT-B-32 encodes ten times that. Here JPEGs are decoded in
batches by ``torchvision.io.decode_jpeg(..., device="cuda")`` (nvJPEG) and resized, cropped and
normalized as tensors on the device, mirroring open_clip's PIL transform (bicubic with
antialiasing, PIL's kernel, PIL's two rounded passes). The result matches the PIL path within
two grey levels, not bit for bit, so it is used only on CUDA: on a CPU the attack keeps PIL and
its outputs stay identical.
Anything this module cannot mirror (another transform, a non-JPEG file, an image the device
decoder refuses) goes through PIL, so no photo is lost.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch

JPEG_MAGIC = b"\xff\xd8\xff"
# open_clip's steps between crop and normalize, in its releases so far
RGB_STEPS = ("MaybeConvertMode", "_convert_to_rgb")
TENSOR_STEPS = ("MaybeToTensor", "ToTensor")


@cache
def image_ops() -> bool:
    """Whether torchvision's C++ image decoders load (not beside a CPU-only torch, see compat)."""
    from idia.compat import ensure_torchvision

    if not ensure_torchvision():
        return False
    from torchvision.io import image as tv_image

    try:
        tv_image._assert_has_image_ops()
    except RuntimeError:
        return False
    return True


def read_encoded(item) -> tuple[str, bytes]:
    """``(name, encoded bytes)`` of a photo given as a path or as such a pair (a shard sample)."""
    if isinstance(item, tuple):
        return str(item[0]), bytes(item[1])
    path = Path(item)
    if not path.is_file():
        raise FileNotFoundError(
            f"photo {str(path)!r} does not exist; check the photo paths in the identity table"
        )
    data = path.read_bytes()
    if not data:
        raise ValueError(
            f"photo {str(path)!r} is empty (0 bytes); download it again or remove it from the "
            "identity table"
        )
    return str(path), data


def _pil_tensor(name: str, data: bytes) -> torch.Tensor:
    from idia.attack import decode_image

    rgb = np.asarray(decode_image(io.BytesIO(data), name), dtype=np.uint8)
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)


def decode_batch(items: Sequence[tuple[str, bytes]], device: str | torch.device) -> list:
    """Each photo as a uint8 ``[3, H, W]`` RGB tensor on ``device``, in order.

    JPEGs are decoded together by torchvision on ``device`` when its decoders load; other
    formats, and JPEGs the batched decoder refuses (CMYK, truncated), are decoded by PIL, whose
    error names the file that no decoder can read.
    """
    out: list = [None] * len(items)
    jpegs = [i for i, (_, data) in enumerate(items) if data[:3] == JPEG_MAGIC]
    if image_ops() and jpegs:
        from torchvision.io import ImageReadMode, decode_jpeg

        encoded = [torch.frombuffer(bytearray(items[i][1]), dtype=torch.uint8) for i in jpegs]
        try:
            decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one bad file fails the batch: decode one by one below
            decoded = [None] * len(jpegs)
        for i, image in zip(jpegs, decoded):
            out[i] = image
    for i, image in enumerate(out):
        if image is None:
            out[i] = _pil_tensor(*items[i]).to(device)
    return out


@dataclass(frozen=True)
class TensorPreprocess:
    """open_clip's ``Resize(size) → CenterCrop → RGB → ToTensor → Normalize`` on uint8 tensors."""

    size: int | tuple[int, ...]
    interpolation: str
    crop: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_transform(cls, preprocess) -> TensorPreprocess | None:
        """The tensor version of ``preprocess``, or None when it holds a step not mirrored here
        (the caller then keeps PIL)."""
        from idia.compat import ensure_torchvision

        ensure_torchvision()
        from torchvision import transforms as T

        steps = list(getattr(preprocess, "transforms", []))
        kinds = [getattr(step, "__name__", type(step).__name__) for step in steps]
        if len(kinds) != 5 or (kinds[0], kinds[1], kinds[4]) != (
            "Resize",
            "CenterCrop",
            "Normalize",
        ):
            return None
        if kinds[2] not in RGB_STEPS or kinds[3] not in TENSOR_STEPS:
            return None
        resize, crop, _, _, norm = steps
        if not isinstance(resize, T.Resize) or resize.max_size is not None:
            return None
        if resize.interpolation.value not in ("bilinear", "bicubic") or not resize.antialias:
            return None
        if getattr(steps[2], "mode", "RGB") != "RGB":
            return None
        size = resize.size if isinstance(resize.size, int) else tuple(resize.size)
        if isinstance(size, tuple) and len(size) == 1:
            size = size[0]
        crop_size = tuple(crop.size) if not isinstance(crop.size, int) else (crop.size,) * 2
        mean = tuple(float(m) for m in norm.mean)
        std = tuple(float(s) for s in norm.std)
        if len(mean) != 3 or len(std) != 3:  # a one-value Normalize broadcasts; not mirrored here
            return None
        return cls(size=size, interpolation=resize.interpolation.value, crop=crop_size,
                   mean=mean, std=std)  # fmt: skip

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """torchvision's ``Resize`` size rule: an int sets the shorter side, keeping the aspect."""
        if not isinstance(self.size, int):
            return int(self.size[0]), int(self.size[1])
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = self.size, int(self.size * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def resize(self, batch: torch.Tensor) -> torch.Tensor:
        """Resize ``[B, 3, H, W]`` (0–255 floats) as PIL does: width first, then height, each
        pass rounded and clamped to 8 bits; one 2-D pass differs from PIL by up to ~20 levels on
        high-frequency content, two passes by at most 2."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        mode = InterpolationMode(self.interpolation)
        height, width = batch.shape[-2:]
        new_h, new_w = self.output_size(height, width)
        for size in ([height, new_w], [new_h, new_w]):
            if list(batch.shape[-2:]) != size:
                batch = F.resize(batch, size, interpolation=mode, antialias=True)
                batch = batch.round_().clamp_(0, 255)
        return batch

    def __call__(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """A float32 batch ``[B, 3, crop_h, crop_w]`` on the images' device; images of one size
        are resized together."""
        from torchvision.transforms import functional as F

        if not images:
            raise ValueError("TensorPreprocess got no images")
        device = images[0].device
        out = torch.empty((len(images), 3, *self.crop), dtype=torch.float32, device=device)
        by_shape: dict[tuple, list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            by_shape[tuple(image.shape)].append(i)
        for rows in by_shape.values():
            batch = self.resize(torch.stack([images[i] for i in rows]).to(torch.float32))
            out[rows] = F.center_crop(batch, list(self.crop)).div_(255)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return out.sub_(mean).div_(std)


def device_preprocess(preprocess, device: str | torch.device) -> TensorPreprocess | None:
    """The on-device pipeline for ``device``: only on CUDA with torchvision's decoders and a
    transform mirrored here; None keeps the PIL path (and its outputs) exactly as they were."""
    if torch.device(device).type != "cuda" or not image_ops():
        return None
    return TensorPreprocess.from_transform(preprocess)
