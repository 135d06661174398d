"""Rendering for the synthetic world: cartoon faces of fixed identities and captioned scenes.

Identities are fixed face parameters; every photo of an identity re-renders those parameters with
a fresh pose, light, background, expression and noise. Faces are drawn so that OpenCV's Haar
cascade finds them (dark brows and eye sockets over lighter cheeks, a light nose bridge, hair
framing the face), and identities differ in many coarse cues so that a tiny CLIP trained for
minutes on a CPU can tell them apart at 64 px.
"""


from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

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
    hairline: float  # forehead top, in face half-heights above the centre (negative)
    hair_part: float  # side-part direction, -1 or 1
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
        face_width=float(u(0.22, 0.28)),
        face_ratio=float(u(1.12, 1.42)),
        squareness=float(rng.choice([2.0, 2.0, 2.6, 3.4])),
        chin_taper=float(u(0.0, 0.35)),
        hair_color=hair_color,
        hair_style=hair_style,
        hair_volume=float(u(0.85, 1.2)),
        hairline=float(u(-0.92, -0.78)),
        hair_part=float(rng.choice([-1.0, 1.0])),
        eye_color=_pick(rng, EYE_COLORS),
        eye_spacing=float(u(0.36, 0.50)),
        eye_size=float(u(0.14, 0.21)),
        eye_open=float(u(0.42, 0.72)),
        eye_y=float(u(-0.12, 0.0)),
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
# Strength of the soft shading; darker skin gets more so its eye band still reads darker than
# its cheeks to the Haar cascade (tuned on detection rate, see tests/test_faces.py).
LIGHT_STRENGTH = 0.85
DARK_SKIN_BOOST = 1.0
SHADE_FLOOR = 0.3
LIGHT_DOWN = 4  # the light map is drawn at 1/4 of the canvas and blurred: soft shading is cheap


def _c(color) -> tuple[int, ...]:
    if isinstance(color, (int, float, np.integer, np.floating)):
        return (int(min(255.0, max(0.0, float(color)))),)
    return tuple(int(min(255.0, max(0.0, float(v)))) for v in color)


def _scale_color(color, f: float) -> tuple[int, ...]:
    return _c([float(v) * f for v in color])


def _mix(a, b, t: float) -> tuple[int, ...]:
    return _c([float(x) * (1 - t) + float(y) * t for x, y in zip(a, b)])


def _pts(points) -> list[np.ndarray]:
    return [np.round(np.asarray(points)).astype(np.int32).reshape(-1, 1, 2)]


def _ellipse(img, center, axes, color, angle=0.0, start=0, end=360, thickness=-1):
    cv2.ellipse(
        img,
        (round(float(center[0])), round(float(center[1]))),
        (max(1, round(float(axes[0]))), max(1, round(float(axes[1])))),
        float(angle),
        start,
        end,
        _c(color),
        thickness if thickness < 0 else max(1, round(float(thickness))),
        _AA,
    )


def _light(light, center, axes, delta, angle=0.0):
    """Add a soft highlight (delta > 0) or shadow (delta < 0) to the light map."""
    _ellipse(
        light,
        (center[0] / LIGHT_DOWN, center[1] / LIGHT_DOWN),
        (axes[0] / LIGHT_DOWN, axes[1] / LIGHT_DOWN),
        128 + delta,
        angle,
    )


def _curve(x0, x1, y, bend, n=12) -> np.ndarray:
    """Parabola from (x0, y) to (x1, y) whose middle is `bend` lower (positive = down)."""
    t = np.linspace(-1.0, 1.0, n)
    xs = x0 + (x1 - x0) * (t + 1) / 2
    ys = y + bend * (1 - t**2)
    return np.stack([xs, ys], axis=1)


@lru_cache(maxsize=16)
def _checker(w: int, cell: int) -> np.ndarray:
    yy, xx = np.mgrid[0:w, 0:w] // cell
    return ((yy + xx) % 2).astype(bool)


def _background(canvas: np.ndarray, rng: np.random.Generator) -> None:
    """Fill with a muted colour, gradient or simple pattern (varies per photo)."""
    w = canvas.shape[0]
    base = rng.uniform(40, 230, size=3)
    other = np.clip(base + rng.uniform(-70, 70, size=3), 0, 255)
    kind = int(rng.integers(5))
    canvas[:] = _c(base)
    if kind == 1:
        t = np.linspace(0.0, 1.0, w, dtype=np.float32)[:, None, None]
        grad = base.astype(np.float32) * (1 - t) + other.astype(np.float32) * t
        if rng.random() < 0.5:
            grad = grad.transpose(1, 0, 2)
        canvas[:] = np.broadcast_to(grad, canvas.shape).astype(np.uint8)
    elif kind == 2:  # stripes
        period = int(rng.integers(w // 10, w // 4))
        for x in range(0, 2 * w, period):
            cv2.line(canvas, (x, 0), (x - w, w), _c(other), period // 3, _AA)
    elif kind == 3:  # checks
        cell = int(rng.integers(w // 8, w // 3))
        canvas[_checker(w, cell)] = _c(other)
    elif kind == 4:  # soft blobs (indoor bokeh)
        for _ in range(int(rng.integers(3, 7))):
            cv2.circle(
                canvas,
                (int(rng.integers(w)), int(rng.integers(w))),
                int(rng.integers(w // 12, w // 4)),
                _c(np.clip(base + rng.uniform(-50, 50, size=3), 0, 255)),
                -1,
                _AA,
            )


def _face_polygon(cx, cy, a, b, squareness, taper, n=40) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / squareness
    x = a * np.sign(c) * np.abs(c) ** e
    y = b * np.sign(s) * np.abs(s) ** e
    lower = np.clip(y / b, 0, 1)
    x = x * (1 - taper * lower**2)
    return np.stack([cx + x, cy + y], axis=1)


# Per hair style: (cap half-width / a, cap half-height / b, sideburn height / b, back hair).
_HAIR = {
    1: (1.04, 0.80, -0.55, None),  # short crop
    2: (1.08, 0.85, -0.50, "long"),  # long straight
    3: (1.06, 0.85, -0.55, None),  # bangs
    4: (1.10, 0.85, -0.50, "bob"),  # bob
    5: (1.05, 0.82, -0.55, None),  # side part
    6: (1.04, 0.80, -0.55, "bun"),  # bun
    7: (1.12, 0.95, -0.50, "afro"),  # big curls
}


def _draw_hair_back(img, p: FaceParams, cx, cy, a, b, color) -> None:
    """Hair behind the head: long styles reach the shoulders."""
    if p.hair_style not in _HAIR:
        return
    v = p.hair_volume
    back = _HAIR[p.hair_style][3]
    if back == "long":
        pts = [
            (cx - a * 1.18 * v, cy - b * 0.3),
            (cx - a * 1.3 * v, cy + b * 1.3),
            (cx + a * 1.3 * v, cy + b * 1.3),
            (cx + a * 1.18 * v, cy - b * 0.3),
        ]
        cv2.fillPoly(img, _pts(pts), _c(color), _AA)
    elif back == "bob":
        _ellipse(img, (cx, cy - b * 0.1), (a * 1.25 * v, b * 1.05), color)
    elif back == "afro":
        _ellipse(img, (cx, cy - b * 0.3), (a * 1.45 * v, b * 1.05 * v), color)
    elif back == "bun":
        _ellipse(img, (cx, cy - b * 1.0), (a * 0.42, a * 0.38), color)


def _draw_hair_front(img, p: FaceParams, cx, cy, a, b, color, brow_y) -> None:
    """Hair over the skull and forehead; it frames the face but stays clear of the brows."""
    if p.hair_style not in _HAIR:
        return
    cap_w, cap_h, side_y, _ = _HAIR[p.hair_style]
    v = min(p.hair_volume, 1.1)
    big_a, big_b = a * cap_w * (1 + 0.3 * (v - 1)), b * cap_h * v
    ccy = cy - b * 0.3
    t = np.linspace(np.pi, 2 * np.pi, 14)
    arc = np.stack([cx + big_a * np.cos(t), ccy + big_b * np.sin(t)], axis=1)
    hair_y = cy + p.hairline * b
    if p.hair_style == 3:  # bangs: a low straight fringe
        hair_y = max(hair_y, brow_y - b * 0.16)
    hair_y = min(hair_y, brow_y - b * 0.12)
    xs = np.linspace(cx + big_a, cx - big_a, 13)
    u = (xs - cx) / big_a
    flat = 0.3 if p.hair_style == 3 else 1.0
    ys = hair_y + (cy + side_y * b - hair_y) * flat * u**2
    if p.hair_style == 5:  # side part: the fringe sweeps down to one side
        ys = ys + b * 0.08 * (u + 1) * (1 - u**2) * p.hair_part
    ys = np.minimum(ys, cy + side_y * b)
    cv2.fillPoly(img, _pts(np.vstack([arc, np.stack([xs, ys], axis=1)])), _c(color), _AA)
    if p.hair_style == 7:
        for k in range(11):
            ang = np.pi * (1.0 + k / 10)
            r = a * 0.22
            _ellipse(img, (cx + big_a * np.cos(ang), ccy + big_b * np.sin(ang)), (r, r), color)


def _draw_eye(img, light, x, y, rx, ry, tilt, p: FaceParams, look, skin) -> None:
    deg = math.degrees(tilt)
    _light(light, (x, y - ry * 0.3), (rx * 1.6, ry * 1.6 + rx * 0.45), -95, deg)
    _ellipse(img, (x, y), (rx, ry), _mix((246, 244, 238), skin, 0.3), deg)
    ir = min(rx * 0.55, ry * 1.05)
    ix = x + look * rx * 0.25
    _ellipse(img, (ix, y), (ir, min(ir, ry * 0.98)), p.eye_color)
    _ellipse(img, (ix, y), (ir * 0.45, min(ir * 0.45, ry * 0.6)), (12, 10, 10))
    # upper lid and lashes: a dark arc makes the eye line darker than the cheeks
    _ellipse(img, (x, y), (rx * 1.05, ry * 1.05), (25, 20, 20), deg, 180, 360, max(2, ry * 0.45))


def render_face(params: FaceParams, rng: np.random.Generator, size: int = 112) -> np.ndarray:
    """One photo of the identity `params`: new pose, light, background, expression and noise."""
    return render_face_box(params, rng, size)[0]


def render_face_box(
    params: FaceParams, rng: np.random.Generator, size: int = 112
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """:func:`render_face` and the face's bounding box ``(x1, y1, x2, y2)`` in the photo's pixels.

    The box is the face outline (brow to chin, ear to ear) carried through the photo's pose, as
    FaceScrub's boxes frame a face.
    """
    p = params
    w = size * SUPERSAMPLE
    img: np.ndarray = np.empty((w, w, 3), np.uint8)
    _background(img, rng)
    light: np.ndarray = np.full((w // LIGHT_DOWN, w // LIGHT_DOWN), 128, np.uint8)

    a = p.face_width * w
    b = a * p.face_ratio
    cx, cy = w * 0.5, w * 0.5 + b * 0.05
    skin = [v * float(rng.uniform(0.94, 1.06)) for v in p.skin]
    hair = [v * float(rng.uniform(0.92, 1.08)) for v in p.hair_color]
    smile = float(np.clip(p.base_smile + rng.normal(0, 0.3), -0.4, 1.0))
    openness = float(np.clip(rng.normal(1.0, 0.12), 0.65, 1.2))
    look = float(rng.uniform(-1, 1))
    fx = cx + float(rng.uniform(-0.05, 0.05)) * a  # small head turn: features slide sideways

    _draw_hair_back(img, p, cx, cy, a, b, hair)
    # neck and shoulders in a per-photo shirt colour
    _ellipse(img, (cx, w * 1.02), (a * 2.1, b * 0.75), rng.uniform(20, 235, size=3))
    neck = _scale_color(skin, 0.8)
    cv2.rectangle(img, (int(cx - a * 0.45), int(cy + b * 0.5)), (int(cx + a * 0.45), w), neck, -1)
    # ears and earrings
    ey = cy + p.eye_y * b
    ear_y = ey + b * 0.15
    for sgn in (-1, 1):
        ex = cx + sgn * a * 0.97
        _ellipse(img, (ex, ear_y), (a * p.ear_size * 0.6, a * p.ear_size), skin)
        _ellipse(img, (ex, ear_y), (a * p.ear_size * 0.3, a * p.ear_size * 0.6), neck)
        if p.earrings:
            ey2 = ear_y + a * p.ear_size * 0.95
            if p.earrings == 1:
                _ellipse(img, (ex, ey2), (a * 0.06, a * 0.06), p.earring_color)
            else:
                _ellipse(
                    img, (ex, ey2 + a * 0.1), (a * 0.1, a * 0.12), p.earring_color, 0, 0, 360, 3
                )
    # face
    outline = _face_polygon(cx, cy, a, b, p.squareness, p.chin_taper)
    cv2.fillPoly(img, _pts(outline), _c(skin), _AA)

    rx = p.eye_size * a
    ry = rx * p.eye_open * openness
    brow_y = ey - p.brow_gap * b - ry
    tip_y = ey + p.nose_length * b + ry
    nw = p.nose_width * a
    my = cy + p.mouth_y * b
    mw = p.mouth_width * a
    # Light map: the face's classic shading pattern (light forehead, cheekbones and nose bridge,
    # dark sockets, shadows under nose, lip and jaw).
    _light(light, (fx, (brow_y + cy + p.hairline * b) / 2), (a * 0.6, b * 0.16), 40)
    for sgn in (-1, 1):
        _light(light, (fx + sgn * a * 0.5, ey + b * 0.3), (a * 0.24, b * 0.13), 30)
        _light(light, (cx + sgn * a * 0.95, cy + b * 0.1), (a * 0.18, b * 0.8), -40)
    _light(light, (fx, (ey + tip_y) / 2), (nw * 0.35, (tip_y - ey) / 2), 50)
    _light(light, (fx, tip_y + nw * 0.35), (nw * 1.1, nw * 0.4), -60)
    _light(light, (fx, my + p.lip_thickness * b * 2.5), (mw * 0.7, b * 0.06), -35)

    # beard on the jaw, below the mouth corners
    if p.beard in (1, 4):
        beard = hair if sum(hair) < sum(skin) else _scale_color(skin, 0.55)  # never paler
        col = _mix(skin, beard, 0.85 if p.beard == 1 else 0.35)
        low = outline[outline[:, 1] > cy + b * 0.32]
        cv2.fillPoly(img, _pts(low), col, _AA)
    if p.beard == 2:
        _ellipse(img, (fx, cy + b * 0.85), (a * 0.28, b * 0.17), hair)

    for sgn in (-1, 1):
        _draw_eye(
            img, light, fx + sgn * p.eye_spacing * a, ey, rx, ry, sgn * p.eye_tilt, p, look, skin
        )
    # brows: darker than the forehead, the strongest Haar cue
    brow_col = _mix(hair, (15, 12, 10), p.brow_dark)
    if sum(p.hair_color) > 450:
        brow_col = _mix(brow_col, (70, 50, 35), 0.6)  # pale hair keeps darker brows
    for sgn in (-1, 1):
        ex = fx + sgn * p.eye_spacing * a
        pts = _curve(ex - rx * 1.3, ex + rx * 1.3, brow_y, -p.brow_arch * b, 7)
        pts[:, 1] += sgn * (pts[:, 0] - ex) * 0.08
        cv2.polylines(img, _pts(pts), False, brow_col, max(2, int(p.brow_thickness * b)), _AA)
    # nose: tip and dark nostrils (the bridge is lit through the light map)
    _ellipse(img, (fx, tip_y), (nw * 0.75, nw * 0.45), _scale_color(skin, 0.92))
    for sgn in (-1, 1):
        _ellipse(
            img, (fx + sgn * nw * 0.45, tip_y + nw * 0.15), (nw * 0.22, nw * 0.14), (60, 35, 30)
        )
    # mouth
    lip = _c(p.lip_color)
    bend = smile * b * 0.1
    if smile > 0.45:  # open smile with teeth
        upper = _curve(fx - mw, fx + mw, my, -abs(bend) * 0.2, 10)
        lower = _curve(fx - mw, fx + mw, my, bend + p.lip_thickness * b * 1.5, 10)
        cv2.fillPoly(img, _pts(np.vstack([upper, lower[::-1]])), (90, 30, 30), _AA)
        teeth = _curve(fx - mw * 0.8, fx + mw * 0.8, my, bend * 0.35 + 1, 8)
        cv2.fillPoly(img, _pts(np.vstack([upper[1:-1], teeth[::-1]])), (245, 245, 240), _AA)
        cv2.polylines(img, _pts(lower), False, lip, max(2, int(p.lip_thickness * b * 0.6)), _AA)
    else:
        mid = _curve(fx - mw, fx + mw, my, bend, 10)
        lower = _curve(fx - mw * 0.9, fx + mw * 0.9, my, bend + p.lip_thickness * b, 10)
        cv2.fillPoly(img, _pts(np.vstack([mid, lower[::-1]])), lip, _AA)
        cv2.polylines(img, _pts(mid), False, (70, 30, 30), max(2, int(b * 0.025)), _AA)
    if p.beard == 3:
        pts = _curve(fx - mw * 0.95, fx + mw * 0.95, my - b * 0.1, -b * 0.04, 8)
        cv2.polylines(img, _pts(pts), False, _c(hair), max(3, int(b * 0.07)), _AA)
    _draw_mark(img, p, fx, cx, cy, a, b, skin)

    # soft light: blur the small map, upsample, multiply
    light = cv2.GaussianBlur(light, (0, 0), sigmaX=max(0.8, a * 0.05 / LIGHT_DOWN))
    light = cv2.resize(light, (w, w), interpolation=cv2.INTER_LINEAR)
    k = LIGHT_STRENGTH + DARK_SKIN_BOOST * max(0.0, 1.0 - sum(p.skin) / 600.0)
    factor = np.maximum(light.astype(np.float32) * (k / 128.0) + (1 - k), SHADE_FLOOR)
    img = np.clip(img.astype(np.float32) * factor[:, :, None], 0, 255).astype(np.uint8)

    _draw_hair_front(img, p, cx, cy, a, b, hair, brow_y)
    _draw_hat(img, p, cx, cy, a, b, brow_y)
    if p.glasses:
        img = _draw_glasses(img, p, fx, cx, ey, a, rx)

    # pose: rotation, scale and shift, then downsample
    angle = float(rng.uniform(-10, 10))
    scale = float(rng.uniform(0.9, 1.1))
    m: np.ndarray = cv2.getRotationMatrix2D((w / 2, w / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.06, 0.06, size=2) * w
    img = cv2.warpAffine(img, m, (w, w), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if SUPERSAMPLE > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    corners = np.array([[cx - a, cy - b, 1], [cx + a, cy - b, 1], [cx - a, cy + b, 1],
                        [cx + a, cy + b, 1]]) @ m.T / SUPERSAMPLE  # fmt: skip
    lo = np.clip(np.floor(corners.min(axis=0)), 0, size - 1).astype(int)
    hi = np.clip(np.ceil(corners.max(axis=0)), 1, size).astype(int)
    return _photometric(img, rng), (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))


def _draw_mark(img, p: FaceParams, fx, cx, cy, a, b, skin) -> None:
    mx, mky = fx + p.mark_x * a, cy + p.mark_y * b
    if p.mark == 1:  # mole
        _ellipse(img, (mx, mky), (a * 0.05, a * 0.05), (50, 30, 25))
    elif p.mark == 2:  # freckles, the same pattern in every photo
        for k, (dx, dy) in enumerate(_FRECKLES):
            sgn = 1 if k % 2 else -1
            center = (fx + sgn * a * (0.45 + 0.18 * dx), cy + b * (0.14 + 0.1 * dy))
            _ellipse(img, center, (a * 0.025, a * 0.025), _scale_color(skin, 0.65))
    elif p.mark == 3:  # blush
        for sgn in (-1, 1):
            col = _mix(skin, (230, 80, 90), 0.35)
            _ellipse(img, (fx + sgn * a * 0.55, cy + b * 0.22), (a * 0.2, b * 0.08), col)
    elif p.mark == 4:  # scar
        p0 = (int(mx - a * 0.12), int(mky - b * 0.12))
        p1 = (int(mx + a * 0.12), int(mky + b * 0.1))
        cv2.line(img, p0, p1, _scale_color(skin, 0.6), max(2, int(a * 0.04)), _AA)


_FRECKLES = np.random.default_rng(20240).uniform(-1, 1, size=(14, 2))


def _draw_hat(img, p: FaceParams, cx, cy, a, b, brow_y) -> None:
    """Hats sit above the brows so that the eye region stays visible."""
    edge = min(cy + p.hairline * b, brow_y - b * 0.14)
    if p.hat == 1:  # cap with a brim
        _ellipse(img, (cx, edge), (a * 1.08, b * 0.62), p.hat_color, 0, 180, 360)
        _ellipse(img, (cx, edge), (a * 1.18, b * 0.08), _scale_color(p.hat_color, 0.7))
    elif p.hat == 2:  # beanie with a pompom
        _ellipse(img, (cx, edge), (a * 1.1, b * 0.72), p.hat_color, 0, 180, 360)
        p0 = (int(cx - a * 1.1), int(edge - b * 0.14))
        cv2.rectangle(img, p0, (int(cx + a * 1.1), int(edge)), _scale_color(p.hat_color, 0.8), -1)
        _ellipse(img, (cx, edge - b * 0.75), (a * 0.16, a * 0.16), _scale_color(p.hat_color, 1.2))
    elif p.hat == 3:  # headband
        pts = _curve(cx - a * 1.0, cx + a * 1.0, edge - b * 0.14, -b * 0.1, 9)
        cv2.polylines(img, _pts(pts), False, _c(p.hat_color), max(3, int(b * 0.09)), _AA)


def _draw_glasses(img, p: FaceParams, fx, cx, ey, a, rx) -> np.ndarray:
    gcol = _c(p.glasses_color)
    thick = max(2, int(a * 0.035))
    if p.glasses == 3:  # tinted lenses
        overlay = img.copy()
        for sgn in (-1, 1):
            _ellipse(
                overlay, (fx + sgn * p.eye_spacing * a, ey), (rx * 1.45, rx * 1.15), (40, 40, 50)
            )
        img = cv2.addWeighted(overlay, 0.4, img, 0.6, 0)
    for sgn in (-1, 1):
        ex = fx + sgn * p.eye_spacing * a
        if p.glasses in (1, 3):
            _ellipse(img, (ex, ey), (rx * 1.45, rx * 1.15), gcol, 0, 0, 360, thick)
        else:
            p0 = (int(ex - rx * 1.5), int(ey - rx * 0.95))
            cv2.rectangle(img, p0, (int(ex + rx * 1.5), int(ey + rx * 0.95)), gcol, thick, _AA)
        outer = fx + sgn * (p.eye_spacing * a + rx * 1.45)
        p1 = (int(cx + sgn * a * 0.98), int(ey - rx * 0.3))
        cv2.line(img, (int(outer), int(ey)), p1, gcol, thick, _AA)
    inner = p.eye_spacing * a - rx * 1.45
    cv2.line(img, (int(fx - inner), int(ey)), (int(fx + inner), int(ey)), gcol, thick, _AA)
    return img


def _photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, brightness/contrast, colour cast, noise and optional JPEG artefacts."""
    size = img.shape[0]
    t = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    grad = np.float32(np.cos(theta)) * t[None, :] + np.float32(np.sin(theta)) * t[:, None]
    gain = np.float32(rng.uniform(0.75, 1.2)) * (1 + np.float32(rng.uniform(0, 0.5)) * grad)
    cast = rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    contrast = np.float32(rng.uniform(0.85, 1.15))
    out: np.ndarray = img.astype(np.float32) * (gain[:, :, None] * (cast * contrast))
    out += np.float32(128 * (1 - contrast))
    sigma = float(rng.uniform(0, 6))
    if sigma > 0.5:
        out += rng.standard_normal(size=out.shape, dtype=np.float32) * np.float32(sigma)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(30, 80))
        _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise RuntimeError(f"OpenCV could not decode the JPEG (quality {quality}) it encoded")
        out = decoded
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


def render_scene(
    rng: np.random.Generator, size: int = 112, shape: str | None = None
) -> tuple[np.ndarray, str]:
    """A face-free image of coloured shapes with a caption that describes it.

    With ``shape``, the image holds that one shape (a labelled example for zero-shot tests).
    """
    w = size * SUPERSAMPLE
    colors = list(SCENE_COLORS)
    bg_name = colors[int(rng.integers(len(colors)))]
    bg = np.asarray(SCENE_COLORS[bg_name], np.float64)
    img: np.ndarray = np.empty((w, w, 3), np.uint8)
    img[:] = _c(bg)
    pattern = int(rng.choice(4, p=[0.55, 0.15, 0.15, 0.15]))
    pattern_word = ["", "striped ", "checkered ", "dotted "][pattern]
    alt = _c(bg * 0.7 + 255 * 0.3 if bg.mean() < 128 else bg * 0.75)
    if pattern == 1:
        for top in range(0, w, w // 8):
            cv2.rectangle(img, (0, top), (w, top + w // 16), alt, -1)
    elif pattern == 2:
        yy, xx = np.mgrid[0:w, 0:w] // (w // 6)
        img[((yy + xx) % 2).astype(bool)] = alt
    elif pattern == 3:
        step = w // 7
        for yy in range(step // 2, w, step):
            for xx in range(step // 2, w, step):
                cv2.circle(img, (xx, yy), step // 6, alt, -1, _AA)

    cells = list(rng.permutation(9))
    if shape is not None and shape not in SCENE_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; the world draws {SCENE_SHAPES}")
    fixed = shape
    n_groups = 1 if fixed else int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    phrases = []
    cell_w = w / 3
    for _ in range(n_groups):
        shape = fixed or SCENE_SHAPES[int(rng.integers(len(SCENE_SHAPES)))]
        fg_choices = [c for c in colors if c != bg_name]
        color_name = fg_choices[int(rng.integers(len(fg_choices)))]
        color = SCENE_COLORS[color_name]
        count = 1 if fixed else int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
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
    if SUPERSAMPLE > 1:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return _photometric(img, rng), caption


def write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())
