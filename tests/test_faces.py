import numpy as np
import pytest

from idia.faces import detect_faces, detection_rate
from idia.render import render_face, render_scene, sample_identity


def _faces(n_identities: int, n_photos: int, size: int = 112) -> list[np.ndarray]:
    out = []
    for i in range(n_identities):
        params = sample_identity(np.random.default_rng([99, i]))
        for j in range(n_photos):
            out.append(render_face(params, np.random.default_rng([99, i, j]), size))
    return out


def test_haar_detects_rendered_faces():
    images = _faces(50, 4)
    detected = [len(detect_faces(im)) > 0 for im in images]
    assert np.mean(detected) >= 0.8


def test_haar_finds_no_faces_in_scenes():
    scenes = [render_scene(np.random.default_rng([98, k]), 112)[0] for k in range(200)]
    assert sum(len(detect_faces(im)) > 0 for im in scenes) <= 2


def test_detect_faces_returns_int_boxes_inside_image():
    boxes = detect_faces(_faces(1, 1)[0])
    assert boxes.dtype.kind == "i" and boxes.shape[1] == 4
    blank = detect_faces(np.full((112, 112, 3), 127, np.uint8))
    assert blank.shape == (0, 4)


def test_detection_rate_counts_and_names_bad_files(tmp_path):
    import cv2

    face, blank = _faces(1, 1)[0], np.full((112, 112, 3), 200, np.uint8)
    paths = []
    for k, im in enumerate([face, blank]):
        path = tmp_path / f"{k}.png"
        cv2.imwrite(str(path), im[:, :, ::-1])
        paths.append(path)
    result = detection_rate(paths)
    assert result["n_images"] == 2
    assert str(paths[1]) in result["undetected"]
    assert result["rate"] == result["n_detected"] / 2
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        detection_rate([broken])
