"""idia.decode: the GPU photo pipeline (batched decoding, tensor preprocessing) against the PIL
path it replaces on CUDA, checked here on the CPU."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from idia.attack import _encode_on_device, encode_photos
from idia.compat import import_open_clip
from idia.decode import (
    TensorPreprocess,
    decode_batch,
    device_preprocess,
    image_ops,
    read_encoded,
)

open_clip = import_open_clip()
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _photo(seed: int, height: int, width: int, smooth: bool) -> Image.Image:
    """Noise (the worst case for resampling) or a smooth face-like gradient with noise."""
    rng = np.random.default_rng(seed)
    if not smooth:
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(6 * x + c) * np.cos(5 * y - c) for c in range(3)], -1)
    pixels = 127 + 100 * base + rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _pixels(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


def _levels(a: torch.Tensor, b: torch.Tensor, std) -> torch.Tensor:
    """|a − b| of normalized batches in 8-bit grey levels."""
    return (a - b).abs() * torch.tensor(std).view(1, 3, 1, 1) * 255


@pytest.mark.parametrize("size", [224, 32])
def test_tensor_preprocess_matches_pil_within_two_levels(size):
    preprocess = open_clip.image_transform(size, is_train=False, mean=MEAN, std=STD)
    tensor = TensorPreprocess.from_transform(preprocess)
    assert tensor is not None and tensor.crop == (size, size) and tensor.std == STD
    shapes = [(112, 112), (150, 97), (97, 150), (300, 200), (20, 24), (size, size)]
    images = [_photo(i, h, w, smooth=i % 2 == 0) for i, (h, w) in enumerate(shapes * 2)]
    ours = tensor([_pixels(image) for image in images])
    theirs = torch.stack([preprocess(image) for image in images])
    assert ours.shape == theirs.shape == (len(images), 3, size, size)
    diff = _levels(ours, theirs, STD)
    assert diff.max() <= 2.01 and diff.mean() < 0.05


def test_unmirrored_transforms_keep_pil():
    train = open_clip.image_transform(224, is_train=True, mean=MEAN, std=STD)
    assert TensorPreprocess.from_transform(train) is None  # random crops: not mirrored
    assert TensorPreprocess.from_transform(lambda image: image) is None
    grey = open_clip.image_transform(224, is_train=False, mean=(0.5,), std=(0.5,))
    assert TensorPreprocess.from_transform(grey) is None  # a one-value Normalize broadcasts
    inference = open_clip.image_transform(224, is_train=False, mean=MEAN, std=STD)
    assert device_preprocess(inference, "cpu") is None  # CPU: the PIL path, byte for byte


def test_decode_batch_reads_every_format_in_order(tmp_path):
    gray = _photo(1, 40, 30, smooth=True).convert("L")
    png = io.BytesIO()
    _photo(2, 33, 21, smooth=False).save(png, format="PNG")
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg(_photo(3, 50, 60, smooth=True)))
    items = [read_encoded(path), ("gray.jpg", _jpeg(gray)), ("b.png", png.getvalue())]
    decoded = decode_batch(items, "cpu")
    assert [tuple(x.shape) for x in decoded] == [(3, 50, 60), (3, 40, 30), (3, 33, 21)]
    assert all(x.dtype == torch.uint8 for x in decoded)
    for (name, data), image in zip(items, decoded):
        want = _pixels(Image.open(io.BytesIO(data)))
        assert (image.int() - want.int()).abs().max() <= 2, name
    with pytest.raises(ValueError, match="'broken.jpg' is not a readable image"):
        decode_batch([items[0], ("broken.jpg", b"\xff\xd8\xff\xe0 not a jpeg")], "cpu")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_encoded(tmp_path / "missing.jpg")


@pytest.mark.skipif(not image_ops(), reason="torchvision's image decoders do not load beside "
                    "this CPU-only torch (idia.compat); they run where torch matches")  # fmt: skip
def test_torchvision_decode_jpeg_matches_pil():
    from torchvision.io import ImageReadMode, decode_jpeg

    datas = [_jpeg(_photo(i, 64 + i, 80, smooth=i % 2 == 1), 75 + i) for i in range(6)]
    encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    for data, image in zip(datas, decode_jpeg(encoded, mode=ImageReadMode.RGB)):
        want = _pixels(Image.open(io.BytesIO(data)))
        assert (image.int() - want.int()).abs().max() <= 2


class PixelModel(torch.nn.Module):
    """Embeds a photo as its preprocessed pixels: embeddings then compare the pipelines'
    inputs exactly (a randomly initialized CLIP maps every photo to nearly one vector)."""

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_device_path_embeds_like_the_pil_path(tmp_path):
    preprocess = open_clip.image_transform(64, is_train=False, mean=MEAN, std=STD)
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(_jpeg(_photo(i, 112 + 10 * (i % 3), 112, smooth=i != 4)))
        paths.append(path)
    items = [*paths[:5], (str(paths[5]), paths[5].read_bytes()), paths[6]]
    pil = encode_photos(PixelModel(), preprocess, items, batch_size=3, progress=False)
    tensor = TensorPreprocess.from_transform(preprocess)
    ours = _encode_on_device(PixelModel(), tensor, items, 3, "cpu", "fp32", False, 2)
    assert ours.shape == pil.shape == (7, 3 * 64 * 64)
    cosine = ours @ pil.T
    assert np.diag(cosine).min() > 0.99999  # the same photos within rounding, in order
    assert (cosine - np.diag(np.diag(cosine))).max() < 0.999
    assert np.abs(np.linalg.norm(ours, axis=1) - 1).max() < 1e-5
