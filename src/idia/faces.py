"""Face detection with OpenCV's Haar cascade, as used to filter attack photos."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    import pandas as pd

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@lru_cache(maxsize=8)
def _load_cascade(path: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise ValueError(f"could not load a Haar cascade from {path}")
    return cascade


def haar_cascade(path: str | None = None) -> cv2.CascadeClassifier:
    """The frontal-face Haar cascade shipped with OpenCV (or the one at `path`), loaded once."""
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no CascadeClassifier (removed in OpenCV 5); "
            "install opencv-python-headless<5"
        )
    if path is None:
        data = getattr(cv2, "data", None)
        if data is None:
            raise RuntimeError(
                "this OpenCV build does not ship its Haar cascades (cv2.data is missing); "
                "install opencv-python-headless<5 or pass the path of " + CASCADE_FILE
            )
        path = str(Path(data.haarcascades) / CASCADE_FILE)
    return _load_cascade(str(path))


def detect_faces(
    image: np.ndarray,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: int = 32,
    cascade_path: str | None = None,
) -> np.ndarray:
    """Face boxes (x, y, w, h) as an int array of shape [n, 4] in an RGB (or gray) uint8 image."""
    if image.ndim == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    elif image.ndim == 2:
        gray = image
    else:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    boxes = haar_cascade(cascade_path).detectMultiScale(
        gray,
        scaleFactor=scale_factor,
        minNeighbors=min_neighbors,
        minSize=(min_size, min_size),
    )
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)


def _source_name(source) -> str:
    return str(source[0]) if isinstance(source, tuple) else str(source)


def read_rgb(source) -> np.ndarray:
    """An image as RGB uint8, from a file path or a ``(name, encoded bytes)`` pair (e.g. a sample
    of a tar shard); raises ValueError naming it if it does not decode."""
    data: np.ndarray | None
    if isinstance(source, tuple):
        data = np.frombuffer(source[1], dtype=np.uint8)
    else:
        data = np.fromfile(str(source), dtype=np.uint8) if Path(source).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise ValueError(f"could not read image {_source_name(source)}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def detection_rate(paths: Sequence[str | Path], **params) -> dict:
    """Share of images in which the cascade finds at least one face; lists the misses."""
    undetected = []
    for path in paths:
        if len(detect_faces(read_rgb(path), **params)) == 0:
            undetected.append(str(path))
    n = len(paths)
    detected = n - len(undetected)
    return {
        "n_images": n,
        "n_detected": detected,
        "rate": detected / n if n else float("nan"),
        "undetected": undetected,
    }


# --------------------------------------------------------------------------- face classifier
# Track C's face filter: a ResNet trained on the study identities' own photos decides whether a
# look-alike image retrieved from the base corpus already shows one of them. torch and
# torchvision are imported inside the functions so that the Haar-only users stay light.

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_FORMAT = "idia-face-classifier/1"
CROP_COLUMNS = ["path", "status", "n_faces", "message", "crop_index", "x", "y", "w", "h"]
PREDICTION_COLUMNS = ["predicted", "confidence", "image_key"]


def _torchvision():
    """torchvision, made importable beside a CPU torch first (see ``idia.compat``)."""
    from idia.compat import ensure_torchvision

    ensure_torchvision()
    import torchvision
    import torchvision.models
    import torchvision.transforms.v2  # noqa: F401  (a submodule, not imported by the package)

    return torchvision


def crop_face(image: np.ndarray, box, margin: float = 0.25, size: int = 64) -> np.ndarray:
    """A square RGB uint8 crop of `size` px around the (x, y, w, h) box.

    The square's side is the box's longer side plus `margin` of it on every side, so hair and
    chin stay in view; where the square leaves the image, the border pixels are repeated, so a
    face at the edge keeps its position in the crop instead of being stretched.
    """
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    x, y, w, h = (float(v) for v in np.asarray(box).reshape(4))
    if w <= 0 or h <= 0:
        raise ValueError(f"face box {tuple(box)} has no area")
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    x0 = int(round(x + w / 2 - side / 2))
    y0 = int(round(y + h / 2 - side / 2))
    height, width = image.shape[:2]
    x1, y1 = x0 + side, y0 + side
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"face box {tuple(box)} lies outside the {width}x{height} image")
    inside = image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pad = (
        (max(-y0, 0), max(y1 - height, 0)),
        (max(-x0, 0), max(x1 - width, 0)),
        (0, 0),
    )
    square = np.pad(inside, pad, mode="edge") if any(a or b for a, b in pad) else inside
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=interpolation)
    return crop.astype(np.uint8, copy=False)


def face_crops(
    paths,
    *,
    size: int = 64,
    margin: float = 0.25,
    largest_only: bool = True,
    **haar_params,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Detect and crop the faces of every image; one table row per image (per face if not
    `largest_only`), so that no image is silently lost.

    An item of ``paths`` is a file path or a ``(name, encoded bytes)`` pair (see `read_rgb`); the
    table's path column holds the name. Returns the crops [m, size, size, 3] uint8 and a table
    with path, status ("ok", "no_face",
    "unreadable"), n_faces, message (the read error for unreadable files), crop_index (row of the
    crop in the array, -1 if none) and the face box x, y, w, h (-1 if none).
    """
    import pandas as pd

    crops: list[np.ndarray] = []
    rows: list[tuple] = []
    for path in paths:
        name = _source_name(path)
        try:
            image = read_rgb(path)
        except (ValueError, OSError, cv2.error) as exc:
            rows.append((name, "unreadable", 0, str(exc), -1, -1, -1, -1, -1))
            continue
        boxes = detect_faces(image, **haar_params)
        if len(boxes) == 0:
            rows.append((name, "no_face", 0, "no face detected", -1, -1, -1, -1, -1))
            continue
        order = np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")
        boxes = boxes[order[:1] if largest_only else order]
        n = len(order)
        if largest_only:
            message = "1 face" if n == 1 else f"{n} faces, kept the largest"
        else:
            message = "1 face" if n == 1 else f"face {{}} of {n}, by decreasing size"
        for k, box in enumerate(boxes):
            rows.append((name, "ok", n, message.format(k + 1), len(crops), *(int(v) for v in box)))
            crops.append(crop_face(image, box, margin=margin, size=size))
    table = pd.DataFrame(rows, columns=CROP_COLUMNS).astype(
        {c: "int64" for c in CROP_COLUMNS[4:] + ["n_faces"]}
    )
    array = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return array, table


def box_crops(items, *, size: int = 64, margin: float = 0.25) -> tuple[np.ndarray, pd.DataFrame]:
    """Crops around known face boxes (FaceScrub's), the same geometry as :func:`face_crops`.

    ``items`` holds (path, (x, y, w, h)) pairs; returns the crops and a table with
    :func:`face_crops`'s columns (status "ok", message "list box", or "unreadable").
    """
    import pandas as pd

    crops: list[np.ndarray] = []
    rows: list[tuple] = []
    for path, box in items:
        name = _source_name(path)
        try:
            image = read_rgb(path)
            crop = crop_face(image, box, margin=margin, size=size)
        except (ValueError, OSError, cv2.error) as exc:
            rows.append((name, "unreadable", 0, str(exc), -1, -1, -1, -1, -1))
            continue
        rows.append((name, "ok", 1, "list box", len(crops), *(int(v) for v in box)))
        crops.append(crop)
    table = pd.DataFrame(rows, columns=CROP_COLUMNS).astype(
        {c: "int64" for c in CROP_COLUMNS[4:] + ["n_faces"]}
    )
    array = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return array, table


def stratified_split(
    labels, test_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test index arrays with every class on both sides.

    Each class of n items sends round(test_fraction * n), clamped to [1, n - 1], to the test side,
    so that the held-out accuracy covers every identity and every identity is learned.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    small = counts < 2
    if small.any():
        listed = ", ".join(f"{c} ({n})" for c, n in zip(classes[small], counts[small]))
        raise ValueError(
            f"these identities have fewer than 2 photos with a detected face: {listed}; "
            "the face classifier needs at least 2 per identity (one to train, one to test) — "
            "add photos or drop them from the identities table"
        )
    n_test = np.clip(np.floor(test_fraction * counts + 0.5).astype(np.int64), 1, counts - 1)
    keys = np.random.default_rng(seed).random(len(labels))
    order = np.lexsort((keys, inverse))  # grouped by class, shuffled within each class
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(labels)) - starts[inverse[order]]
    is_test = rank < n_test[inverse[order]]
    return np.sort(order[~is_test]), np.sort(order[is_test])


def classifier_transforms(size: int, train: bool):
    """uint8 HxWx3 numpy crop -> normalized float tensor [3, size, size].

    The training augmentation follows the authors' FaceScrub ResNet-50 training script
    (github.com/D0miH/does-clip-know-my-face, facescrub_training/train.py): a square
    RandomResizedCrop keeping 85-100 % of the area, ColorJitter (brightness 0.2, contrast 0.2,
    saturation 0.1, hue 0.1) and a horizontal flip, then ImageNet normalization. The paper's
    appendix itself was not available to us; their script is the reference. Evaluation only
    resizes and normalizes.
    """
    import torch

    v2 = _torchvision().transforms.v2
    steps = [v2.ToImage()]
    if train:
        steps += [
            v2.RandomResizedCrop((size, size), scale=(0.85, 1.0), ratio=(1.0, 1.0), antialias=True),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.1, hue=0.1),
            v2.RandomHorizontalFlip(p=0.5),
        ]
    else:
        steps.append(v2.Resize((size, size), antialias=True))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


@dataclass
class FaceClassifier:
    """A trained face classifier: output k of `model` is the person `classes[k]`."""

    model: Any  # torch.nn.Module
    classes: list
    arch: str
    size: int


def _resnet_archs() -> list[str]:
    models = _torchvision().models
    return [
        name
        for name in models.list_models(module=models)
        if re.fullmatch(r"(resnet\d+|resnext\d+_\w+|wide_resnet\d+_\d+)", name)
    ]


# A 10-layer ResNet at half width (channels 32..256, one basic block per stage): about a sixth
# of resnet18's compute, for CPU-sized worlds. Any torchvision ResNet works the same way.
NARROW_RESNET = "resnet10-narrow"


def _narrow_resnet(n_classes: int, widths=(32, 64, 128, 256)):
    from torch import nn

    resnet = _torchvision().models.resnet
    stem = [nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]  # fmt: skip
    blocks, width_in = [], widths[0]
    for stage, width in enumerate(widths):
        stride = 1 if stage == 0 else 2
        down = None
        if stride != 1 or width_in != width:
            down = nn.Sequential(resnet.conv1x1(width_in, width, stride), nn.BatchNorm2d(width))
        blocks.append(resnet.BasicBlock(width_in, width, stride, down))
        width_in = width
    model = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.add_module("fc", nn.Linear(width_in, n_classes))
    return model


def _build_model(arch: str, n_classes: int):
    if arch == NARROW_RESNET:
        return _narrow_resnet(n_classes)
    archs = _resnet_archs()
    if arch not in archs:
        raise ValueError(
            f"face classifier arch {arch!r} is not a torchvision ResNet; use one of "
            + ", ".join([NARROW_RESNET, *archs])
        )
    return _torchvision().models.get_model(arch, weights=None, num_classes=n_classes)


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 face crops of shape [n, size, size, 3], got {crops.dtype} "
            f"{crops.shape}"
        )
    return crops


def _logits(model, crops: np.ndarray, size: int, batch_size: int, device: str):
    """Logits for all crops in batches, with the evaluation transform applied batch-wise."""
    import torch

    v2 = _torchvision().transforms.v2
    prepare = v2.Compose(
        [
            v2.Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = torch.from_numpy(crops[start : start + batch_size]).permute(0, 3, 1, 2)
            out.append(model(prepare(batch.contiguous()).to(device)).float().cpu())
    if not out:
        return torch.zeros((0, model.fc.out_features))
    return torch.cat(out)


class _CropDataset:
    def __init__(self, crops: np.ndarray, targets: np.ndarray, transform):
        self.crops, self.targets, self.transform = crops, targets, transform

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int):
        return self.transform(self.crops[i]), int(self.targets[i])


def train_face_classifier(
    crops: np.ndarray,
    labels,
    *,
    arch: str = "resnet50",
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    seed: int = 0,
    test_fraction: float = 0.1,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
) -> tuple[FaceClassifier, dict]:
    """Train a ResNet from scratch on the identities' face crops; report held-out accuracy.

    ``workers`` DataLoader processes run the augmentation beside the training step; their
    random streams derive from ``seed`` too, so a given seed and worker count give the same
    weights (a different worker count draws different augmentations).

    The crops are split per identity with `stratified_split`; the classifier reads them at their
    own size. Training is AdamW with a per-step cosine schedule and label-smoothed (0.1)
    cross-entropy. All randomness (initialization, augmentation, batch order) comes from `seed`
    inside a forked RNG, so the same inputs give the same weights on a CPU and the caller's RNG
    state is left alone.
    """
    import time

    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    crops = _check_crops(crops)
    labels = np.asarray(labels)
    if len(labels) != len(crops):
        raise ValueError(f"{len(crops)} crops but {len(labels)} labels")
    if crops.shape[1] != crops.shape[2]:
        raise ValueError(f"face crops must be square, got {crops.shape[1]}x{crops.shape[2]}")
    classes, targets = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"a face classifier needs at least 2 identities, got {len(classes)}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    size = int(crops.shape[1])
    train_idx, test_idx = stratified_split(labels, test_fraction=test_fraction, seed=seed)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model(arch, len(classes)).to(device)
        batch = min(batch_size, len(train_idx))
        data = _CropDataset(crops[train_idx], targets[train_idx], classifier_transforms(size, True))
        loader: DataLoader = DataLoader(
            data,  # type: ignore[arg-type]  # map-style: any object with __getitem__ and __len__
            batch_size=batch,
            shuffle=True,
            # a last batch of one sample breaks BatchNorm on a 1x1 feature map
            drop_last=len(data) % batch == 1,
            generator=torch.Generator().manual_seed(seed),
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        losses = []
        bar = tqdm(
            range(epochs),
            desc=f"face classifier {arch}",
            unit="epoch",
            file=sys.stderr,
            mininterval=2,
            disable=not progress,
        )
        for _ in bar:
            model.train()
            total, seen = 0.0, 0
            for images, target in loader:
                images, target = images.to(device), target.to(device)
                loss = criterion(model(images), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(target)
                seen += len(target)
            losses.append(total / seen)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    classifier = FaceClassifier(model=model, classes=classes.tolist(), arch=arch, size=size)
    logits = _logits(model, crops[test_idx], size, 256, device)
    truth = torch.from_numpy(targets[test_idx])
    report = {
        "arch": arch,
        "classes": classifier.classes,
        "size": size,
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "epochs": int(epochs),
        "train_loss": [float(v) for v in losses],
        "test_accuracy": float((logits.argmax(1) == truth).float().mean()),
    }
    if len(classes) >= 5:
        top5 = logits.topk(5, dim=1).indices
        report["test_top5"] = float((top5 == truth[:, None]).any(1).float().mean())
    report["seconds"] = time.perf_counter() - started
    return classifier, report


def predict_faces(
    classifier: FaceClassifier, crops: np.ndarray, batch_size: int = 256, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 class index into `classifier.classes` and its softmax probability, per crop."""
    crops = _check_crops(crops) if len(crops) else np.zeros((0, 1, 1, 3), np.uint8)
    if len(crops) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    classifier.model.to(device)
    probs = _logits(classifier.model, crops, classifier.size, batch_size, device).softmax(1)
    confidence, index = probs.max(1)
    return index.numpy().astype(np.int64), confidence.numpy().astype(np.float32)


def save_face_classifier(classifier: FaceClassifier, path: str | Path) -> None:
    """Write weights and a JSON-able header (arch, classes, size) atomically to `path`."""
    import os
    import tempfile

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "format": CHECKPOINT_FORMAT,
        "arch": classifier.arch,
        "classes": list(classifier.classes),
        "size": int(classifier.size),
    }
    state = {k: v.detach().cpu() for k, v in classifier.model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        # through a file object: given a path, torch names the archive's folder after the file,
        # and the temporary file's random name made every checkpoint's bytes differ
        with open(tmp, "wb") as handle:
            torch.save({"header": header, "state_dict": state}, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_face_classifier(path: str | Path, device: str = "cpu") -> FaceClassifier:
    """The classifier that `save_face_classifier` wrote, in evaluation mode on `device`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no face classifier checkpoint at {path}; run the face-classifier rule "
            "(`snakemake face_classifier`, track C face filter) to train and save it"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    header = checkpoint.get("header", {}) if isinstance(checkpoint, dict) else {}
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a face classifier checkpoint written by idia")
    model = _build_model(header["arch"], len(header["classes"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device).eval()
    return FaceClassifier(
        model=model, classes=list(header["classes"]), arch=header["arch"], size=header["size"]
    )


def presence(
    predictions: pd.DataFrame, person_ids, *, min_faces: int, min_confidence: float
) -> pd.DataFrame:
    """Which identities the base corpus already shows, by the face classifier's word.

    `predictions` has one row per retrieved face (columns predicted, confidence, image_key; a
    query_person column is ignored: a face counts for whomever the classifier names). A person is
    present when named with confidence >= `min_confidence` on at least `min_faces` distinct
    images. Every id in `person_ids` gets a row, also those that no face was attributed to.
    """
    import pandas as pd

    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"face predictions lack the column(s) {', '.join(missing)}; expected "
            + ", ".join(PREDICTION_COLUMNS)
        )
    if min_faces < 1:
        raise ValueError(f"min_faces must be at least 1, got {min_faces}")
    ids = pd.Index(list(dict.fromkeys(person_ids)), name="person_id")
    confident = predictions.loc[
        predictions["confidence"].to_numpy() >= min_confidence, ["predicted", "image_key"]
    ].drop_duplicates()
    faces = confident.groupby("predicted").size().reindex(ids, fill_value=0).astype("int64")
    table = faces.rename("faces").reset_index()
    table["present"] = table["faces"] >= min_faces
    noun = np.where(table["faces"] == 1, " retrieved face", " retrieved faces")
    table["present_reason"] = (
        "classifier named this person on "
        + table["faces"].astype(str)
        + noun
        + f" with confidence ≥ {min_confidence:g} (≥ {min_faces} needed)"
    )
    return table


def presence_report(
    faces: pd.DataFrame,
    identities: pd.DataFrame,
    classifier: dict,
    truth: pd.DataFrame | None,
    *,
    min_faces: int,
    min_confidence: float,
) -> tuple[pd.DataFrame, dict]:
    """The face filter's verdict per identity and its summary.

    ``faces`` are the retrieved faces of every base shard (shard, key, status, predicted,
    confidence); ``classifier`` is the face classifier's report. A person the classifier was not
    trained on (fewer than 2 faces among their photos) cannot be checked: their row says so and
    the summary lists them as unverifiable. With a ``truth`` table (person_id, planted), the
    summary scores the filter against it: precision and recall of "present" (None when
    undefined, as with nobody planted).
    """
    named = faces[faces["predicted"].notna()].assign(
        image_key=lambda t: t["shard"] + "/" + t["key"]
    )
    table = presence(
        named,
        list(identities["person_id"]),
        min_faces=min_faces,
        min_confidence=min_confidence,
    )
    table = identities[["person_id", "name"]].merge(table, on="person_id")
    too_few = classifier["too_few_faces"]
    table["verifiable"] = ~table["person_id"].isin(too_few)
    table.loc[~table["verifiable"], "present_reason"] = [
        f"Haar found a face on {too_few[pid]} of this person's photos (the face classifier needs "
        "2): it cannot check whether the base corpus shows them"
        for pid in table.loc[~table["verifiable"], "person_id"]
    ]
    summary = {
        "retrieved_images": int(faces[["shard", "key"]].drop_duplicates().shape[0]),
        "faces": int(faces["predicted"].notna().sum()),
        "images_without_face": int((faces["status"] == "no_face").sum()),
        "images_unreadable": int((faces["status"] == "unreadable").sum()),
        "present": sorted(table.loc[table["present"], "person_id"]),
        "unverifiable": sorted(table.loc[~table["verifiable"], "person_id"]),
        "classifier": {key: classifier[key] for key in ("arch", "size", "n_test", "test_accuracy")},
        "min_faces": min_faces,
        "min_confidence": min_confidence,
    }
    if truth is not None:
        table["planted"] = table["person_id"].map(truth.set_index("person_id")["planted"])
        table["planted"] = table["planted"].astype(bool)
        tp = int((table["present"] & table["planted"]).sum())
        fp = int((table["present"] & ~table["planted"]).sum())
        fn = int((~table["present"] & table["planted"]).sum())
        summary |= {
            "planted": sorted(table.loc[table["planted"], "person_id"]),
            "true_positives": tp,
            "false_positives": fp,
            "false_negatives": fn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
    return table, summary


def filter_present(
    *,
    shards: Sequence[str | Path],
    identities: str | Path,
    classifier: str | Path,
    truth: str | Path | None,
    table: str | Path,
    summary: str | Path,
    min_faces: int,
    min_confidence: float,
) -> dict:
    """The face filter's job: read the per-shard faces, write the verdict table (csv) and the
    summary (json, returned), and log one line on how the filter did."""
    import json

    import pandas as pd

    from idia.identities import read_identities
    from idia.smk import write_json

    rows, result = presence_report(
        pd.concat([pd.read_parquet(p) for p in shards], ignore_index=True),
        read_identities(identities),
        json.loads(Path(classifier).read_text()),
        pd.read_parquet(truth) if truth else None,
        min_faces=min_faces,
        min_confidence=min_confidence,
    )
    rows.to_csv(table, index=False, float_format="%.4f")
    write_json(summary, result)
    line = f"face filter: {len(result['present'])} identities present in the base corpus"
    if "precision" in result:
        line += (
            f"; against the planted truth: precision {result['precision']}, recall "
            f"{result['recall']} ({result['true_positives']} of {len(result['planted'])} "
            "planted identities found)"
        )
    print(line)
    return result


def too_few_faces(table: pd.DataFrame, person_ids: Sequence[str]) -> pd.Series:
    """Persons (of ``person_ids``) with fewer than 2 usable face crops in ``table`` (one row per
    photo: person_id, status), with their count: they cannot be split 90/10 nor recognized, so
    the classifier leaves them out and the cohort excludes them with that reason."""
    ok = table[table["status"] == "ok"]
    per_person = ok.groupby("person_id").size().reindex(person_ids, fill_value=0)
    return per_person[per_person < 2]


def build_face_classifier(
    *,
    identities: str | Path,
    outcomes: str | Path,
    model_out: str | Path,
    report_out: str | Path,
    photos_out: str | Path,
    options: dict,
    haar: dict,
    threads: int,
) -> dict:
    """Track C's face classifier: crop every identity photo's face, train the classifier on the
    crops (``options``: the validated ``injection.face_classifier`` section) and write it, its
    report (returned) and the per-photo crop table.

    The classifier sees faces the way the face filter will: cut around the Haar cascade's box.
    Where the cascade finds none but the identity list gives the face's box (FaceScrub's,
    in the acquisition ``outcomes``), the list's box is used, so that no listed face is lost.
    """
    import pandas as pd
    import torch

    from idia.backends import pick_device
    from idia.identities import photo_table, read_identities
    from idia.smk import write_json

    # one core for the augmentation worker, the rest for the training step
    torch.set_num_threads(max(1, threads - 1))
    photos = photo_table(read_identities(identities))
    size = options["input_size"]
    found, found_table = face_crops(list(photos["path"]), size=size, **haar)
    boxed = pd.read_parquet(outcomes)
    boxed = boxed[boxed["crop"] == "ok"].set_index("photo")
    missed = found_table.loc[found_table["status"] == "no_face", "path"]
    boxes = boxed.loc[missed[missed.isin(boxed.index)]]
    xywh = [(r.x1, r.y1, r.x2 - r.x1, r.y2 - r.y1) for r in boxes.itertuples()]
    listed, listed_table = box_crops(list(zip(boxes.index, xywh)), size=size)
    listed_table.loc[listed_table["crop_index"] >= 0, "crop_index"] += len(found)
    crops = np.concatenate([found, listed])
    found_table = found_table[~found_table["path"].isin(listed_table["path"])]
    table = photos.merge(
        pd.concat([found_table, listed_table], ignore_index=True), on="path", how="left"
    )
    table.to_parquet(photos_out, index=False)
    too_few = too_few_faces(table, list(photos["person_id"].unique()))
    if len(too_few):
        print(f"{len(too_few)} identities have fewer than 2 detected faces and are left out: "
              + ", ".join(f"{pid} ({n})" for pid, n in too_few.items()))  # fmt: skip
    ok = table[(table["status"] == "ok") & ~table["person_id"].isin(too_few.index)]
    for status, group in table[table["status"] != "ok"].groupby("status"):
        print(f"{len(group)} photos not used ({status}); each is listed in {photos_out}")
    classifier, report = train_face_classifier(
        crops[ok["crop_index"].to_numpy()],
        ok["person_id"].to_numpy(),
        arch=options["arch"],
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        lr=options["lr"],
        seed=options["seed"],
        test_fraction=options["test_fraction"],
        device="cuda" if options["gpus"] > 0 else pick_device("cpu"),
        workers=1 if threads > 1 else 0,
    )
    save_face_classifier(classifier, model_out)
    report["photos"] = int(len(table))
    report["photos_without_face"] = int((table["status"] == "no_face").sum())
    report["photos_unreadable"] = int((table["status"] == "unreadable").sum())
    report["too_few_faces"] = {pid: int(n) for pid, n in too_few.items()}
    write_json(report_out, report)
    print(
        f"face crops: {int((found_table['status'] == 'ok').sum())} around the Haar cascade's "
        f"box, {len(listed)} around the list's box where the cascade found none"
    )
    print(
        f"face classifier {options['arch']}: held-out accuracy {report['test_accuracy']:.3f} on "
        f"{report['n_test']} crops of {len(report['classes'])} identities"
    )
    return report
