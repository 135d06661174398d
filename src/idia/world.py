"""A deterministic synthetic world: cartoon identities, their names, and a captioned web corpus.

Identities are fixed face parameters; every photo of an identity re-renders those parameters with
a fresh pose, light, background, expression and noise. Faces are drawn so that OpenCV's Haar
cascade finds them (dark brows and eye sockets over lighter cheeks, a light nose bridge, hair
framing the face), and identities differ in many coarse cues so that a tiny CLIP trained for
minutes on a CPU can tell them apart at 64 px. Members appear in the corpus under their names;
non-members never do.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from idia.names import name_key, world_names

SUPERSAMPLE = 2
JPEG_QUALITY = 95

DEFAULT_CAPTION_TEMPLATES = [
    "a photo of {name}",
    "{name} at the premiere",
    "{name} smiling for the camera",
    "portrait of {name} in {city}",
    "{name} attends the gala",
    "close-up of {name}",
    "{name} during an interview",
    "{name} arrives at the awards in {city}",
]

CITIES = [
    "Paris", "London", "Berlin", "Madrid", "Dublin", "Chicago", "Toronto", "Sydney", "Tokyo",
    "Rome", "Vienna", "Lisbon", "Boston", "Seattle", "Oslo", "Prague",
]  # fmt: skip

# fmt: off
SKIN_TONES = [
    (255, 224, 196), (247, 210, 180), (240, 200, 160), (228, 185, 142), (214, 170, 125),
    (198, 150, 108), (176, 128, 90), (152, 106, 72), (128, 88, 60), (104, 70, 48),
]
HAIR_COLORS = [
    (20, 16, 14), (52, 36, 26), (96, 62, 38), (140, 90, 50), (168, 72, 36), (214, 178, 104),
    (236, 218, 170), (150, 150, 150), (232, 232, 228), (60, 70, 170), (200, 80, 150),
    (90, 40, 30),
]
EYE_COLORS = [
    (60, 40, 25), (100, 65, 35), (40, 90, 160), (70, 130, 190), (60, 120, 60), (110, 140, 90),
    (120, 120, 130), (20, 20, 20),
]
LIP_COLORS = [(190, 90, 90), (160, 70, 70), (210, 110, 120), (140, 60, 60), (180, 40, 60)]
ACCESSORY_COLORS = [
    (20, 20, 20), (200, 30, 30), (30, 60, 200), (220, 190, 40), (30, 150, 60), (240, 240, 240),
    (150, 60, 180), (230, 120, 30),
]
# fmt: on

# Named colours for scenes and their RGB values.
SCENE_COLORS = {
    "red": (215, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (245, 220, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 210),
    "purple": (130, 50, 170),
    "pink": (245, 150, 190),
    "brown": (120, 75, 40),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "cyan": (40, 200, 220),
}
SCENE_SHAPES = [
    "circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon", "heart",
    "crescent", "bar",
]  # fmt: skip
PLURALS = {"cross": "crosses"}
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
# 3x3 grid cells -> position phrase for single objects.
CELL_PHRASES = [
    "at the top left", "at the top", "at the top right",
    "on the left", "in the center", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
]  # fmt: skip


@dataclass
class FaceParams:
    """Everything that makes an identity recognizable; photos only add nuisance variation."""

    skin: tuple[int, int, int]
    face_width: float  # half-width as a share of the canvas
    face_ratio: float  # half-height / half-width
    squareness: float  # superellipse exponent (2 = ellipse)
    chin_taper: float
    hair_color: tuple[int, int, int]
    hair_style: int  # 0 bald .. 7, see _draw_hair
    hair_volume: float
    eye_color: tuple[int, int, int]
    eye_spacing: float
    eye_size: float
    eye_open: float
    eye_y: float
    eye_tilt: float
    brow_thickness: float
    brow_arch: float
    brow_gap: float
    brow_dark: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_y: float
    lip_color: tuple[int, int, int]
    lip_thickness: float
    base_smile: float
    glasses: int  # 0 none, 1 round, 2 rectangular, 3 tinted
    glasses_color: tuple[int, int, int]
    beard: int  # 0 none, 1 full, 2 goatee, 3 moustache, 4 stubble
    hat: int  # 0 none, 1 cap, 2 beanie, 3 headband
    hat_color: tuple[int, int, int]
    earrings: int  # 0 none, 1 studs, 2 hoops
    earring_color: tuple[int, int, int]
    mark: int  # 0 none, 1 mole, 2 freckles, 3 blush, 4 scar
    mark_x: float
    mark_y: float
    ear_size: float


def _pick(rng: np.random.Generator, options: list) -> tuple:
    return tuple(int(v) for v in options[int(rng.integers(len(options)))])


def sample_identity(rng: np.random.Generator, gender: str | None = None) -> FaceParams:
    """Draw one identity's fixed face parameters; gender only shifts beard and hair odds."""
    male = gender == "male" if gender is not None else bool(rng.random() < 0.5)
    u = rng.uniform
    hair_style_p = (
        np.array([0.08, 0.24, 0.06, 0.16, 0.12, 0.14, 0.12, 0.08])
        if male
        else np.array([0.01, 0.06, 0.24, 0.16, 0.16, 0.09, 0.14, 0.14])
    )
    hair_style = int(rng.choice(8, p=hair_style_p / hair_style_p.sum()))
    hair_color = _pick(rng, HAIR_COLORS)
    beard = int(rng.choice(5, p=[0.45, 0.15, 0.15, 0.15, 0.10])) if male else 0
    return FaceParams(
        skin=_pick(rng, SKIN_TONES),
        face_width=float(u(0.20, 0.27)),
        face_ratio=float(u(1.12, 1.42)),
        squareness=float(rng.choice([2.0, 2.0, 2.6, 3.4])),
        chin_taper=float(u(0.0, 0.35)),
        hair_color=hair_color,
        hair_style=hair_style,
        hair_volume=float(u(0.8, 1.25)),
        eye_color=_pick(rng, EYE_COLORS),
        eye_spacing=float(u(0.36, 0.50)),
        eye_size=float(u(0.14, 0.21)),
        eye_open=float(u(0.42, 0.72)),
        eye_y=float(u(-0.20, -0.06)),
        eye_tilt=float(u(-0.12, 0.12)),
        brow_thickness=float(u(0.035, 0.085)),
        brow_arch=float(u(-0.02, 0.08)),
        brow_gap=float(u(0.10, 0.17)),
        brow_dark=float(u(0.0, 0.6)),
        nose_length=float(u(0.22, 0.38)),
        nose_width=float(u(0.10, 0.22)),
        mouth_width=float(u(0.28, 0.50)),
        mouth_y=float(u(0.44, 0.58)),
        lip_color=_pick(rng, LIP_COLORS),
        lip_thickness=float(u(0.03, 0.075)),
        base_smile=float(u(-0.1, 0.6)),
        glasses=int(rng.choice(4, p=[0.62, 0.16, 0.14, 0.08])),
        glasses_color=_pick(rng, ACCESSORY_COLORS),
        beard=beard,
        hat=int(rng.choice(4, p=[0.72, 0.10, 0.10, 0.08])),
        hat_color=_pick(rng, ACCESSORY_COLORS),
        earrings=int(rng.choice(3, p=[0.55, 0.25, 0.20] if not male else [0.85, 0.1, 0.05])),
        earring_color=_pick(rng, [(230, 200, 60), (220, 220, 230), (200, 30, 60), (30, 80, 200)]),
        mark=int(rng.choice(5, p=[0.45, 0.17, 0.14, 0.14, 0.10])),
        mark_x=float(u(-0.55, 0.55)),
        mark_y=float(u(0.0, 0.45)),
        ear_size=float(u(0.16, 0.26)),
    )


# --------------------------------------------------------------------------- drawing helpers

_AA = cv2.LINE_AA


def _c(color) -> tuple[int, ...]:
    if np.isscalar(color):
        return (int(np.clip(color, 0, 255)),)
    return tuple(int(np.clip(v, 0, 255)) for v in color)


def _scale_color(color, f: float) -> tuple[int, int, int]:
    return _c(np.asarray(color, dtype=np.float64) * f)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return _c(np.asarray(a, dtype=np.float64) * (1 - t) + np.asarray(b, dtype=np.float64) * t)


def _pts(points) -> list[np.ndarray]:
    return [np.round(np.asarray(points)).astype(np.int32).reshape(-1, 1, 2)]


def _ellipse(img, center, axes, color, angle=0.0, start=0, end=360, thickness=-1):
    cv2.ellipse(
        img,
        (int(round(center[0])), int(round(center[1]))),
        (max(1, int(round(axes[0]))), max(1, int(round(axes[1])))),
        float(angle),
        start,
        end,
        _c(color),
        thickness if thickness < 0 else max(1, int(round(thickness))),
        _AA,
    )


def _curve(x0, x1, y, bend, n=12) -> np.ndarray:
    """Parabola from (x0, y) to (x1, y) whose middle is `bend` lower (positive = down)."""
    t = np.linspace(-1.0, 1.0, n)
    xs = x0 + (x1 - x0) * (t + 1) / 2
    ys = y + bend * (1 - t**2)
    return np.stack([xs, ys], axis=1)


def _background(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Fill with a muted colour, gradient or simple pattern (varies per photo)."""
    w = canvas.shape[0]
    base = rng.uniform(40, 230, size=3)
    other = np.clip(base + rng.uniform(-70, 70, size=3), 0, 255)
    kind = int(rng.integers(5))
    if kind == 0:
        canvas[:] = _c(base)
    elif kind == 1:
        t = np.linspace(0.0, 1.0, w)[:, None, None]
        grad = base * (1 - t) + other * t
        if rng.random() < 0.5:
            grad = grad.transpose(1, 0, 2)
        canvas[:] = np.broadcast_to(grad, canvas.shape).astype(np.uint8)
    elif kind == 2:  # stripes
        canvas[:] = _c(base)
        period = int(rng.integers(w // 10, w // 4))
        for x in range(0, 2 * w, period):
            cv2.line(canvas, (x, 0), (x - w, w), _c(other), period // 3, _AA)
    elif kind == 3:  # checks
        cell = int(rng.integers(w // 8, w // 3))
        yy, xx = np.mgrid[0:w, 0:w] // cell
        mask = ((yy + xx) % 2).astype(bool)
        canvas[:] = _c(base)
        canvas[mask] = _c(other)
    else:  # soft blobs (indoor bokeh)
        canvas[:] = _c(base)
        for _ in range(int(rng.integers(3, 7))):
            cv2.circle(
                canvas,
                (int(rng.integers(w)), int(rng.integers(w))),
                int(rng.integers(w // 12, w // 4)),
                _c(np.clip(base + rng.uniform(-50, 50, size=3), 0, 255)),
                -1,
                _AA,
            )


def _face_polygon(cx, cy, a, b, squareness, taper, n=48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / squareness
    x = a * np.sign(c) * np.abs(c) ** e
    y = b * np.sign(s) * np.abs(s) ** e
    lower = np.clip(y / b, 0, 1)
    x = x * (1 - taper * lower**2)
    return np.stack([cx + x, cy + y], axis=1)


def _draw_hair_back(img, p: FaceParams, cx, cy, a, b, color) -> None:
    """Hair behind the head: long styles reach the shoulders."""
    v = p.hair_volume
    if p.hair_style == 2:  # long straight
        top = cy - b * 1.05 * v
        pts = [
            (cx - a * 1.25 * v, cy - b * 0.3),
            (cx - a * 1.3 * v, cy + b * 1.35),
            (cx + a * 1.3 * v, cy + b * 1.35),
            (cx + a * 1.25 * v, cy - b * 0.3),
        ]
        cv2.fillPoly(img, _pts(pts), _c(color), _AA)
        _ellipse(img, (cx, cy - b * 0.25), (a * 1.25 * v, cy - b * 0.25 - top), color)
    elif p.hair_style == 4:  # bob
        _ellipse(img, (cx, cy - b * 0.05), (a * 1.28 * v, b * 1.1 * v), color)
    elif p.hair_style == 7:  # big curly / afro
        _ellipse(img, (cx, cy - b * 0.2), (a * 1.5 * v, b * 1.15 * v), color)
    elif p.hair_style == 6:  # ponytail / bun behind
        _ellipse(img, (cx, cy - b * 1.05), (a * 0.45, a * 0.4), color)


def _draw_hair_front(img, p: FaceParams, cx, cy, a, b, color, dark) -> None:
    """Hair on top of the face: cap and fringe; darker than the forehead so it frames the face."""
    v = p.hair_volume
    style = p.hair_style
    if style == 0:
        return
    if style in (1, 2, 4, 6, 7):  # cap with a parting line
        _ellipse(img, (cx, cy - b * 0.42), (a * 1.04, b * 0.68 * min(v, 1.1)), color, 0, 180, 360)
        hairline = cy - b * (0.55 if style != 1 else 0.62)
        pts = _curve(cx - a * 1.02, cx + a * 1.02, hairline, -b * 0.12)
        pts = np.vstack([pts, [(cx + a * 1.02, cy - b * 0.9), (cx - a * 1.02, cy - b * 0.9)]])
        cv2.fillPoly(img, _pts(pts), _c(color), _AA)
        if style in (2, 4):  # side locks down the cheeks
            for sgn in (-1, 1):
                pts = [
                    (cx + sgn * a * 1.06, cy - b * 0.55),
                    (cx + sgn * a * 0.82, cy - b * 0.45),
                    (cx + sgn * a * 0.92, cy + b * 0.25),
                    (cx + sgn * a * 1.12, cy + b * 0.3),
                ]
                cv2.fillPoly(img, _pts(pts), _c(color), _AA)
        if style == 7:
            for k in range(9):
                ang = np.pi * (1.05 + 0.9 * k / 8)
                _ellipse(
                    img,
                    (cx + a * 1.05 * np.cos(ang), cy - b * 0.42 + b * 0.75 * np.sin(ang)),
                    (a * 0.28, a * 0.28),
                    color,
                )
    elif style == 3:  # straight fringe / bangs down to the brows
        _ellipse(img, (cx, cy - b * 0.42), (a * 1.05, b * 0.7 * v), color, 0, 180, 360)
        pts = np.vstack(
            [
                [(cx - a * 1.0, cy - b * 0.45)],
                _curve(cx - a * 0.9, cx + a * 0.9, cy - b * 0.42, b * 0.04, 8),
                [(cx + a * 1.0, cy - b * 0.45), (cx + a, cy - b * 0.9), (cx - a, cy - b * 0.9)],
            ]
        )
        cv2.fillPoly(img, _pts(pts), _c(color), _AA)
    elif style == 5:  # side-swept
        _ellipse(img, (cx, cy - b * 0.45), (a * 1.04, b * 0.66 * v), color, 0, 180, 360)
        pts = [
            (cx - a * 1.02, cy - b * 0.45),
            (cx + a * 0.5, cy - b * 0.72),
            (cx + a * 1.02, cy - b * 0.38),
            (cx + a * 1.02, cy - b * 0.9),
            (cx - a * 1.02, cy - b * 0.9),
        ]
        cv2.fillPoly(img, _pts(pts), _c(color), _AA)
        cv2.line(
            img,
            (int(cx - a * 0.3), int(cy - b * 1.05)),
            (int(cx - a * 0.2), int(cy - b * 0.6)),
            _c(dark),
            2,
            _AA,
        )


def _draw_eye(img, shade, x, y, rx, ry, tilt, p: FaceParams, skin, look) -> None:
    socket = _scale_color(skin, 0.72)
    _ellipse(shade, (x, y - ry * 0.2), (rx * 1.45, ry * 1.9 + rx * 0.25), 150, math.degrees(tilt))
    _ellipse(img, (x, y), (rx * 1.25, ry * 1.5 + rx * 0.15), socket, math.degrees(tilt))
    _ellipse(img, (x, y), (rx, ry), (246, 244, 238), math.degrees(tilt))
    ir = min(rx * 0.55, ry * 1.05)
    ix = x + look * rx * 0.25
    _ellipse(img, (ix, y), (ir, min(ir, ry * 0.98)), p.eye_color)
    _ellipse(img, (ix, y), (ir * 0.45, min(ir * 0.45, ry * 0.6)), (12, 10, 10))
    # upper lid / lashes: a dark arc makes the eye line read as darker than the cheeks
    _ellipse(img, (x, y), (rx * 1.05, ry * 1.05), (25, 20, 20), math.degrees(tilt), 180, 360, ry * 0.45)


def render_face(params: FaceParams, rng: np.random.Generator, size: int = 112) -> np.ndarray:
    """One photo of the identity `params`: new pose, light, background, expression and noise."""
    p = params
    w = size * SUPERSAMPLE
    img = np.empty((w, w, 3), np.uint8)
    _background(img, rng)
    shade = np.zeros((w, w), np.uint8)  # blurred darkening: eye sockets, under nose, jaw side

    a = p.face_width * w
    b = a * p.face_ratio
    cx, cy = w * 0.5, w * 0.5 + b * 0.02
    skin = np.asarray(p.skin, np.float64) * rng.uniform(0.94, 1.06)
    hair = np.asarray(p.hair_color, np.float64) * rng.uniform(0.92, 1.08)
    hair_dark = _scale_color(hair, 0.6)
    smile = float(np.clip(p.base_smile + rng.normal(0, 0.3), -0.4, 1.0))
    openness = float(np.clip(rng.normal(1.0, 0.12), 0.65, 1.2))
    look = float(rng.uniform(-1, 1))
    yaw = float(rng.uniform(-0.05, 0.05)) * a  # small head turn: features slide sideways

    _draw_hair_back(img, p, cx, cy, a, b, hair)
    # neck and shoulders in a per-photo shirt colour
    shirt = rng.uniform(20, 235, size=3)
    _ellipse(img, (cx, w * 1.02), (a * 2.1, b * 0.75), shirt)
    cv2.rectangle(
        img,
        (int(cx - a * 0.45), int(cy + b * 0.5)),
        (int(cx + a * 0.45), int(w * 0.96)),
        _scale_color(skin, 0.8),
        -1,
    )
    # ears
    ear_y = cy + (p.eye_y + 0.12) * b
    for sgn in (-1, 1):
        _ellipse(img, (cx + sgn * a * 0.98, ear_y), (a * p.ear_size * 0.6, a * p.ear_size), skin)
        _ellipse(
            img, (cx + sgn * a * 0.99, ear_y), (a * p.ear_size * 0.3, a * p.ear_size * 0.6),
            _scale_color(skin, 0.8),
        )  # fmt: skip
        if p.earrings:
            ex, ey = cx + sgn * a * 1.0, ear_y + a * p.ear_size * 0.95
            if p.earrings == 1:
                _ellipse(img, (ex, ey), (a * 0.06, a * 0.06), p.earring_color)
            else:
                _ellipse(img, (ex, ey + a * 0.1), (a * 0.1, a * 0.12), p.earring_color, 0, 0, 360, 3)
    # face
    cv2.fillPoly(img, _pts(_face_polygon(cx, cy, a, b, p.squareness, p.chin_taper)), _c(skin), _AA)
    fx = cx + yaw
    # side shading of the face and under-chin shadow
    for sgn in (-1, 1):
        _ellipse(shade, (cx + sgn * a * 0.95, cy + b * 0.1), (a * 0.18, b * 0.8), 70)
    _ellipse(shade, (fx, cy + b * p.mouth_y + b * 0.02), (a * p.mouth_width * 0.9, b * 0.1), 50)

    # beard below the mouth line (drawn before the mouth)
    if p.beard in (1, 4):
        col = hair if p.beard == 1 else _mix(skin, hair, 0.35)
        pts = _face_polygon(cx, cy, a, b, p.squareness, p.chin_taper)
        pts = pts[pts[:, 1] > cy + b * 0.12]
        cv2.fillPoly(img, _pts(np.vstack([pts, [(cx - a * 0.95, cy + b * 0.12)]])), _c(col), _AA)
    if p.beard == 2:
        _ellipse(img, (fx, cy + b * 0.82), (a * 0.3, b * 0.2), hair)

    # eyes
    ey = cy + p.eye_y * b
    rx = p.eye_size * a
    ry = rx * p.eye_open * openness
    for sgn in (-1, 1):
        ex = fx + sgn * p.eye_spacing * a
        _draw_eye(img, shade, ex, ey, rx, ry, sgn * p.eye_tilt, p, skin, look)
    # brows: darker than the forehead, the strongest Haar cue
    brow_col = _mix(hair, (15, 12, 10), p.brow_dark)
    if p.hair_color in [(232, 232, 228), (236, 218, 170), (214, 178, 104)]:
        brow_col = _mix(brow_col, (70, 50, 35), 0.6)  # pale hair keeps darker brows
    by = ey - p.brow_gap * b - ry
    for sgn in (-1, 1):
        ex = fx + sgn * p.eye_spacing * a
        pts = _curve(ex - rx * 1.3, ex + rx * 1.3, by, -p.brow_arch * b, 8)
        pts[:, 1] += sgn * (pts[:, 0] - ex) * 0.08
        cv2.polylines(img, _pts(pts), False, brow_col, max(2, int(p.brow_thickness * b)), _AA)
    # nose: light bridge between dark sockets, dark nostrils and shadow under the tip
    tip_y = ey + p.nose_length * b + ry
    nw = p.nose_width * a
    cv2.line(
        img,
        (int(fx), int(ey - ry)),
        (int(fx), int(tip_y - nw * 0.4)),
        _scale_color(skin, 1.12),
        max(2, int(nw * 0.45)),
        _AA,
    )
    _ellipse(shade, (fx, tip_y + nw * 0.3), (nw * 1.1, nw * 0.45), 110)
    _ellipse(img, (fx, tip_y), (nw * 0.75, nw * 0.45), _scale_color(skin, 0.92))
    for sgn in (-1, 1):
        _ellipse(img, (fx + sgn * nw * 0.45, tip_y + nw * 0.15), (nw * 0.22, nw * 0.14), (60, 35, 30))
    # mouth
    my = cy + p.mouth_y * b
    mw = p.mouth_width * a
    lip = _c(p.lip_color)
    bend = smile * b * 0.1
    upper = _curve(fx - mw, fx + mw, my, -abs(bend) * 0.2, 12)
    lower = _curve(fx - mw, fx + mw, my, bend + p.lip_thickness * b * 1.5, 12)
    if smile > 0.45:  # open smile with teeth
        cv2.fillPoly(img, _pts(np.vstack([upper, lower[::-1]])), (90, 30, 30), _AA)
        teeth = _curve(fx - mw * 0.8, fx + mw * 0.8, my, bend * 0.35 + 1, 10)
        cv2.fillPoly(img, _pts(np.vstack([upper[1:-1], teeth[::-1]])), (245, 245, 240), _AA)
        cv2.polylines(img, _pts(lower), False, lip, max(2, int(p.lip_thickness * b * 0.6)), _AA)
    else:
        mid = _curve(fx - mw, fx + mw, my, bend, 12)
        lower = _curve(fx - mw * 0.9, fx + mw * 0.9, my, bend + p.lip_thickness * b, 12)
        cv2.fillPoly(img, _pts(np.vstack([mid, lower[::-1]])), lip, _AA)
        cv2.polylines(img, _pts(mid), False, (70, 30, 30), max(2, int(b * 0.025)), _AA)
    if p.beard == 3:
        pts = _curve(fx - mw * 0.95, fx + mw * 0.95, my - b * 0.1, -b * 0.04, 10)
        cv2.polylines(img, _pts(pts), False, _c(hair), max(3, int(b * 0.07)), _AA)
    # face marks
    mx, mky = cx + p.mark_x * a, cy + p.mark_y * b
    if p.mark == 1:
        _ellipse(img, (mx, mky), (a * 0.05, a * 0.05), (50, 30, 25))
    elif p.mark == 2:
        mrng = np.random.default_rng(int(p.mark_x * 1e6) & 0xFFFFFFFF)  # same freckles each photo
        for sgn in (-1, 1):
            for dx, dy in mrng.uniform(-1, 1, size=(7, 2)):
                _ellipse(
                    img,
                    (fx + sgn * a * (0.45 + 0.18 * dx), cy + b * (0.12 + 0.1 * dy)),
                    (a * 0.025, a * 0.025),
                    _scale_color(skin, 0.7),
                )
    elif p.mark == 3:
        for sgn in (-1, 1):
            _ellipse(img, (fx + sgn * a * 0.55, cy + b * 0.2), (a * 0.2, b * 0.09), _mix(skin, (230, 80, 90), 0.35))
    elif p.mark == 4:
        cv2.line(
            img,
            (int(mx - a * 0.12), int(mky - b * 0.12)),
            (int(mx + a * 0.12), int(mky + b * 0.1)),
            _scale_color(skin, 0.65),
            max(2, int(a * 0.04)),
            _AA,
        )

    # soft shading (blurred) multiplied in
    shade = cv2.GaussianBlur(shade, (0, 0), sigmaX=max(1.0, a * 0.06))
    factor = 1.0 - shade.astype(np.float32) * (0.45 / 255.0)
    img = (img.astype(np.float32) * factor[:, :, None]).astype(np.uint8)

    _draw_hair_front(img, p, cx, cy, a, b, hair, hair_dark)
    # hats sit above the brows so the eye region stays visible
    if p.hat == 1:  # cap with a brim
        _ellipse(img, (cx, cy - b * 0.6), (a * 1.08, b * 0.6), p.hat_color, 0, 180, 360)
        _ellipse(img, (cx, cy - b * 0.6), (a * 1.15, b * 0.1), _scale_color(p.hat_color, 0.75))
    elif p.hat == 2:  # beanie
        _ellipse(img, (cx, cy - b * 0.62), (a * 1.1, b * 0.7), p.hat_color, 0, 180, 360)
        cv2.rectangle(
            img,
            (int(cx - a * 1.1), int(cy - b * 0.7)),
            (int(cx + a * 1.1), int(cy - b * 0.55)),
            _scale_color(p.hat_color, 0.8),
            -1,
        )
        _ellipse(img, (cx, cy - b * 1.35), (a * 0.16, a * 0.16), _scale_color(p.hat_color, 1.2))
    elif p.hat == 3:  # headband
        pts = _curve(cx - a * 1.0, cx + a * 1.0, cy - b * 0.6, -b * 0.1, 10)
        cv2.polylines(img, _pts(pts), False, _c(p.hat_color), max(3, int(b * 0.09)), _AA)
    # glasses
    if p.glasses:
        gcol = _c(p.glasses_color)
        thick = max(2, int(a * 0.035))
        for sgn in (-1, 1):
            ex = fx + sgn * p.eye_spacing * a
            if p.glasses == 3:  # tinted lenses
                overlay = img.copy()
                _ellipse(overlay, (ex, ey), (rx * 1.45, rx * 1.15), (40, 40, 50))
                img = cv2.addWeighted(overlay, 0.45, img, 0.55, 0)
            if p.glasses in (1, 3):
                _ellipse(img, (ex, ey), (rx * 1.45, rx * 1.15), gcol, 0, 0, 360, thick)
            else:
                cv2.rectangle(
                    img,
                    (int(ex - rx * 1.5), int(ey - rx * 0.95)),
                    (int(ex + rx * 1.5), int(ey + rx * 0.95)),
                    gcol,
                    thick,
                    _AA,
                )
        inner = p.eye_spacing * a - rx * 1.45
        cv2.line(img, (int(fx - inner), int(ey)), (int(fx + inner), int(ey)), gcol, thick, _AA)
        for sgn in (-1, 1):
            ex = fx + sgn * (p.eye_spacing * a + rx * 1.45)
            cv2.line(img, (int(ex), int(ey)), (int(cx + sgn * a * 0.98), int(ey - rx * 0.3)), gcol, thick, _AA)

    # pose: rotation, scale and shift, then downsample
    angle = float(rng.uniform(-10, 10))
    scale = float(rng.uniform(0.9, 1.1))
    shift = rng.uniform(-0.06, 0.06, size=2) * w
    m = cv2.getRotationMatrix2D((w / 2, w / 2), angle, scale)
    m[:, 2] += shift
    img = cv2.warpAffine(img, m, (w, w), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return _photometric(img, rng)


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, brightness/contrast, colour cast, noise and optional JPEG artefacts."""
    size = img.shape[0]
    out = img.astype(np.float32)
    t = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    grad = np.cos(theta) * t[None, :] + np.sin(theta) * t[:, None]
    gain = float(rng.uniform(0.75, 1.2)) * (1 + float(rng.uniform(0, 0.5)) * grad)
    cast = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    out = out * gain[:, :, None] * cast
    contrast = float(rng.uniform(0.85, 1.15))
    out = (out - 128) * contrast + 128
    sigma = float(rng.uniform(0, 6))
    if sigma > 0.5:
        out += rng.normal(0, sigma, size=out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(30, 80))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


# --------------------------------------------------------------------------- generic scenes


def _shape_points(shape: str, x: float, y: float, r: float, rot: float) -> list[np.ndarray]:
    def poly(k, radii):
        t = rot + np.linspace(0, 2 * np.pi, len(radii) * k, endpoint=False)
        rr = np.tile(radii, k)
        return np.stack([x + r * rr * np.cos(t), y + r * rr * np.sin(t)], axis=1)

    if shape == "square":
        return [poly(4, [1.0])]
    if shape == "triangle":
        return [poly(3, [1.0])]
    if shape == "star":
        return [poly(5, [1.0, 0.42])]
    if shape == "diamond":
        t = rot + np.array([0, np.pi / 2, np.pi, 3 * np.pi / 2])
        rr = np.array([1.0, 0.6, 1.0, 0.6])
        return [np.stack([x + r * rr * np.cos(t), y + r * rr * np.sin(t)], axis=1)]
    if shape == "hexagon":
        return [poly(6, [1.0])]
    if shape == "cross":
        base = np.array(
            [(-1, -0.3), (-0.3, -0.3), (-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3),
             (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1), (-0.3, 0.3), (-1, 0.3)]
        )  # fmt: skip
    elif shape == "bar":
        base = np.array([(-1, -0.3), (1, -0.3), (1, 0.3), (-1, 0.3)])
    elif shape == "heart":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        hx = 16 * np.sin(t) ** 3
        hy = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        base = np.stack([hx, hy], axis=1) / 16.0
        rot = rot * 0.2
    else:
        raise ValueError(shape)
    c, s = np.cos(rot), np.sin(rot)
    rotm = np.array([[c, -s], [s, c]])
    return [np.array([x, y]) + r * base @ rotm.T]


def render_scene(rng: np.random.Generator, size: int = 112) -> tuple[np.ndarray, str]:
    """A face-free image of coloured shapes with a caption that describes it."""
    w = size * SUPERSAMPLE
    colors = list(SCENE_COLORS)
    bg_name = colors[int(rng.integers(len(colors)))]
    bg = np.asarray(SCENE_COLORS[bg_name], np.float64)
    img = np.empty((w, w, 3), np.uint8)
    img[:] = _c(bg)
    pattern = int(rng.choice(4, p=[0.55, 0.15, 0.15, 0.15]))
    pattern_word = ["", "striped ", "checkered ", "dotted "][pattern]
    alt = _c(bg * 0.7 + 255 * 0.3 if bg.mean() < 128 else bg * 0.75)
    if pattern == 1:
        for y in range(0, w, w // 8):
            cv2.rectangle(img, (0, y), (w, y + w // 16), alt, -1)
    elif pattern == 2:
        yy, xx = np.mgrid[0:w, 0:w] // (w // 6)
        img[((yy + xx) % 2).astype(bool)] = alt
    elif pattern == 3:
        step = w // 7
        for yy in range(step // 2, w, step):
            for xx in range(step // 2, w, step):
                cv2.circle(img, (xx, yy), step // 6, alt, -1, _AA)

    cells = list(rng.permutation(9))
    n_groups = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    phrases = []
    cell_w = w / 3
    for _ in range(n_groups):
        shape = SCENE_SHAPES[int(rng.integers(len(SCENE_SHAPES)))]
        fg_choices = [c for c in colors if c != bg_name]
        color_name = fg_choices[int(rng.integers(len(fg_choices)))]
        color = SCENE_COLORS[color_name]
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        count = min(count, len(cells))
        if count == 0:
            break
        group_cells = [int(cells.pop()) for _ in range(count)]
        for cell in group_cells:
            row, col = divmod(cell, 3)
            x = (col + 0.5 + rng.uniform(-0.12, 0.12)) * cell_w
            y = (row + 0.5 + rng.uniform(-0.12, 0.12)) * cell_w
            r = cell_w * rng.uniform(0.28, 0.42)
            rot = rng.uniform(0, 2 * np.pi)
            if shape == "circle":
                _ellipse(img, (x, y), (r, r), color)
            elif shape == "ring":
                _ellipse(img, (x, y), (r * 0.85, r * 0.85), color, 0, 0, 360, r * 0.3)
            elif shape == "crescent":
                _ellipse(img, (x, y), (r, r), color)
                _ellipse(img, (x + r * 0.45, y - r * 0.2), (r * 0.8, r * 0.8), _c(bg))
            else:
                cv2.fillPoly(img, _pts(_shape_points(shape, x, y, r, rot)[0]), color, _AA)
        noun = shape if count == 1 else PLURALS.get(shape, shape + "s")
        phrase = f"{COUNT_WORDS[count]} {color_name} {noun}"
        if count == 1:
            phrase += " " + CELL_PHRASES[group_cells[0]]
        phrases.append(phrase)
    if len(phrases) == 1:
        objects = phrases[0]
    else:
        objects = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    lead = ["", "a picture of ", "an illustration of ", "a drawing of "][int(rng.integers(4))]
    caption = f"{lead}{objects} on a {pattern_word}{bg_name} background"
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return _photometric(img, rng), caption


# --------------------------------------------------------------------------- the world


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _write_parquet(table: dict, path: Path) -> None:
    pq.write_table(pa.table(table), path, compression="zstd")


def occurrence_counts(n_members: int, lo: int, hi: int) -> np.ndarray:
    """Log-evenly spaced counts from lo to hi: every region of the range is populated."""
    if n_members == 0:
        return np.zeros(0, np.int64)
    if n_members == 1:
        return np.array([round(math.sqrt(lo * hi))], np.int64)
    grid = np.exp(np.linspace(math.log(lo), math.log(hi), n_members))
    return np.clip(np.round(grid), lo, hi).astype(np.int64)


def _choose_members(genders: list[str], n_members: int, seed: int) -> np.ndarray:
    """Indices of members: a seeded shuffle, interleaved by gender so members are balanced."""
    order = np.random.default_rng([seed, 11]).permutation(len(genders))
    female = [int(i) for i in order if genders[i] == "female"]
    male = [int(i) for i in order if genders[i] != "female"]
    interleaved = []
    first, second = (female, male) if (seed % 2 == 0) else (male, female)
    for k in range(max(len(female), len(male))):
        if k < len(first):
            interleaved.append(first[k])
        if k < len(second):
            interleaved.append(second[k])
    return np.array(interleaved[:n_members], dtype=np.int64)


def _validate(
    n_identities, n_members, attack_photos, occurrences, n_generic, image_size, n_broken_urls,
    shard_size, caption_templates,
) -> None:  # fmt: skip
    if n_identities < 1:
        raise ValueError(f"n_identities must be >= 1, got {n_identities}")
    if not 0 <= n_members <= n_identities:
        raise ValueError(f"n_members must be between 0 and n_identities={n_identities}, got {n_members}")
    if attack_photos < 1:
        raise ValueError(f"attack_photos must be >= 1, got {attack_photos}")
    if not isinstance(occurrences, dict) or set(occurrences) != {"min", "max"}:
        raise ValueError(f"occurrences must be a dict with keys 'min' and 'max', got {occurrences!r}")
    lo, hi = occurrences["min"], occurrences["max"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        raise ValueError(f"occurrences needs integers 1 <= min <= max, got min={lo}, max={hi}")
    if n_generic < 0 or n_broken_urls < 0:
        raise ValueError("n_generic and n_broken_urls must be >= 0")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32 for faces to be detectable, got {image_size}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if not caption_templates:
        raise ValueError("caption_templates must not be empty")
    for template in caption_templates:
        if "{name}" not in template:
            raise ValueError(f"caption template {template!r} lacks '{{name}}'")
        try:
            template.format(name="X", city="Y")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"caption template {template!r} may only use {{name}} and {{city}}: {err}"
            ) from err


def _check_captions(captions: list[str], owners: list[int], names: list[str], members) -> None:
    """Each name occurs exactly in its own pairs; non-members occur nowhere."""
    keys = [name_key(n) for n in names]
    member_set = set(int(m) for m in members)
    for caption, owner in zip(captions, owners):
        ckey = name_key(caption)
        for i, key in enumerate(keys):
            if key in ckey and i != owner:
                kind = "non-member" if i not in member_set else "member"
                raise AssertionError(
                    f"{kind} name {names[i]!r} appears in caption {caption!r} of another pair"
                )


def build_world(
    outdir: Path,
    *,
    seed: int,
    n_identities: int,
    n_members: int,
    attack_photos: int,
    occurrences: dict,
    n_generic: int,
    image_size: int,
    n_broken_urls: int,
    shard_size: int,
    caption_templates: list[str],
) -> dict:
    """Write identities, ground truth, attack photos and a sharded captioned corpus to outdir."""
    _validate(
        n_identities, n_members, attack_photos, occurrences, n_generic, image_size,
        n_broken_urls, shard_size, caption_templates,
    )  # fmt: skip
    outdir = Path(outdir)
    names_genders = world_names(n_identities, seed)
    names = [n for n, _ in names_genders]
    genders = [g for _, g in names_genders]
    width = max(4, len(str(n_identities - 1)))
    person_ids = [f"p{i:0{width}d}" for i in range(n_identities)]
    params = [
        sample_identity(np.random.default_rng([seed, 1, i]), genders[i])
        for i in range(n_identities)
    ]
    members = _choose_members(genders, n_members, seed)
    counts = occurrence_counts(n_members, occurrences["min"], occurrences["max"])
    counts = counts[np.random.default_rng([seed, 12]).permutation(n_members)]
    occ = np.zeros(n_identities, np.int64)
    occ[members] = counts
    is_member = np.zeros(n_identities, bool)
    is_member[members] = True

    # Corpus rows before shuffling: (kind, owner, index, caption).
    rows: list[tuple[str, int, int, str]] = []
    for i in range(n_identities):
        for j in range(int(occ[i])):
            crng = np.random.default_rng([seed, 7, i, j])
            template = caption_templates[int(crng.integers(len(caption_templates)))]
            city = CITIES[int(crng.integers(len(CITIES)))]
            rows.append(("named", i, j, template.format(name=names[i], city=city)))
    scene_captions = {}
    for k in range(n_generic):
        rows.append(("generic", -1, k, ""))
    for k in range(n_broken_urls):
        _, caption = render_scene(np.random.default_rng([seed, 5, k]), 32)
        rows.append(("broken", -1, k, caption))
    n_named = int(occ.sum())

    photo_root = outdir / "photos"
    image_dir = outdir / "corpus" / "images"
    url_dir = outdir / "corpus" / "urls"
    for d in (photo_root, image_dir, url_dir):
        d.mkdir(parents=True, exist_ok=True)
    for old in url_dir.glob("part-*.parquet"):
        old.unlink()

    total = n_identities * attack_photos + n_named + n_generic
    order = np.random.default_rng([seed, 6]).permutation(len(rows))
    key_width = max(6, len(str(len(rows) - 1)))
    keys, paths, captions, owners = [], [], [], []
    with tqdm(total=total, desc="world", unit="img", file=sys.stderr, mininterval=2) as bar:
        for i in range(n_identities):
            pdir = photo_root / person_ids[i]
            pdir.mkdir(exist_ok=True)
            for j in range(attack_photos):
                img = render_face(params[i], np.random.default_rng([seed, 2, i, j]), image_size)
                _write_jpeg(pdir / f"{j:03d}.jpg", img)
            bar.update(attack_photos)
        for pos, r in enumerate(order):
            kind, owner, idx, caption = rows[r]
            key = f"{pos:0{key_width}d}"
            path = f"{key}.jpg"
            if kind == "named":
                img = render_face(params[owner], np.random.default_rng([seed, 3, owner, idx]), image_size)
                _write_jpeg(image_dir / path, img)
                bar.update(1)
            elif kind == "generic":
                img, caption = render_scene(np.random.default_rng([seed, 4, idx]), image_size)
                scene_captions[idx] = caption
                _write_jpeg(image_dir / path, img)
                bar.update(1)
            else:
                stale = image_dir / path
                if stale.exists():
                    stale.unlink()
            keys.append(key)
            paths.append(path)
            captions.append(caption)
            owners.append(owner)

    _check_captions(captions, owners, names, members)

    for s, start in enumerate(range(0, len(keys), shard_size)):
        end = start + shard_size
        _write_parquet(
            {"key": keys[start:end], "path": paths[start:end], "caption": captions[start:end]},
            url_dir / f"part-{s:05d}.parquet",
        )
    _write_parquet(
        {
            "person_id": person_ids,
            "name": names,
            "gender": genders,
            "source": ["world"] * n_identities,
            "photo_dir": [str(photo_root / pid) for pid in person_ids],
            "n_photos": pa.array([attack_photos] * n_identities, pa.int64()),
        },
        outdir / "identities.parquet",
    )
    _write_parquet(
        {
            "person_id": person_ids,
            "name": names,
            "member": pa.array(is_member.tolist(), pa.bool_()),
            "occurrences": pa.array(occ.tolist(), pa.int64()),
        },
        outdir / "truth.parquet",
    )
    summary = {
        "parameters": {
            "seed": seed,
            "n_identities": n_identities,
            "n_members": n_members,
            "attack_photos": attack_photos,
            "occurrences": {"min": occurrences["min"], "max": occurrences["max"]},
            "n_generic": n_generic,
            "image_size": image_size,
            "n_broken_urls": n_broken_urls,
            "shard_size": shard_size,
            "caption_templates": list(caption_templates),
        },
        "counts": {
            "identities": n_identities,
            "members": int(is_member.sum()),
            "non_members": int((~is_member).sum()),
            "corpus_pairs": len(keys),
            "named_pairs": n_named,
            "generic_pairs": n_generic,
            "broken_urls": n_broken_urls,
            "shards": (len(keys) + shard_size - 1) // shard_size,
            "attack_photos": n_identities * attack_photos,
        },
    }
    (outdir / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
