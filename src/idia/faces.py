"""Face detection with OpenCV's Haar cascade, as used to filter attack photos."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

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


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8; raises ValueError naming the file if it does not decode."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise ValueError(f"could not read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def detection_rate(paths: list[str | Path], **params) -> dict:
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
