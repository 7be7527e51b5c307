"""The body as a list of simple shapes, back to front, for one person in one capture.

Coordinates are *body units*: y runs down from the top of the head (0) to the soles (1), x is horizontal
with 0 at the body's centre line. Every shape names its *surface* (``face``, ``upper``, ``bag``, ...);
the modality renderers decide what a surface looks like and :data:`PART_OF` which mask part it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from reidkit.data.synthetic.people import Person
from reidkit.data.synthetic.scene import Capture


@dataclass(frozen=True)
class Shape:
    """``ellipse``: (cx, cy, rx, ry); ``capsule`` / ``box``: (ax, ay, bx, by, ra, rb): a segment from a
    to b with radius ra at a and rb at b, round-ended (capsule) or flat-ended (box)."""

    kind: str
    params: tuple[float, ...]
    surface: str


#: mask part of each surface (part names and ids live in masks.py)
PART_OF = {
    "face": "head", "neck": "head", "hair": "head",
    "upper": "torso",
    "sleeve": "arms", "arm": "arms", "hand": "arms",
    "lower": "legs", "leg": "legs", "shoe": "legs",
    "hat": "accessories", "backpack": "accessories", "strap": "accessories", "bag": "accessories",
}


def _limb(start: tuple[float, float], lengths: tuple[float, float], angles: tuple[float, float],
          spread: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Joint positions of a two-segment limb. Angles are swing (radians from vertical, +x forward);
    ``spread`` is a fixed sideways offset per segment (front/back views, where swing is foreshortened)."""
    (x, y), (l1, l2), (a1, a2) = start, lengths, angles
    mid = (x + l1 * math.sin(a1) + spread, y + l1 * math.cos(a1))
    end = (mid[0] + l2 * math.sin(a2) + spread * 0.5, mid[1] + l2 * math.cos(a2))
    return mid, end


class _Builder:
    def __init__(self, person: Person, capture: Capture) -> None:
        self.p, self.c = person, capture
        self.shapes: list[Shape] = []
        b = person.build
        self.hs = person.head_size
        self.y_sh = self.hs + 0.04
        self.y_hip = 1 - person.leg_length
        self.side = capture.view == "side"
        self.sw = person.shoulders * b * (0.62 if self.side else 1.0)  # side view shows the chest depth
        self.hipw = 0.085 * b * (0.8 if self.side else 1.0)
        self.arm_r, self.leg_r = 0.026 * b, 0.04 * b
        self.swing = capture.stride * math.sin(capture.phase)

    def add(self, kind: str, surface: str, *params: float) -> None:
        self.shapes.append(Shape(kind, tuple(float(v) for v in params), surface))

    # parts -------------------------------------------------------------------------------------------
    def arm(self, sign: int) -> None:
        """One arm; ``sign`` -1 / +1 is the body side (front/back) or far / near arm (side view)."""
        p, up = self.p, self.p.upper
        lengths = (0.16, 0.15)
        if self.side:
            a = -sign * self.swing * 0.8
            start, spread = (0.0 + 0.01 * sign, self.y_sh + 0.015), 0.0
            angles = (a, a + 0.35)
        else:
            a = abs(self.swing) * 0.3
            start, spread = (sign * (self.sw - 0.012), self.y_sh + 0.02), sign * 0.012
            angles = (a * 0.3, a * 0.3)
            lengths = (lengths[0] * math.cos(a), lengths[1] * math.cos(a))
        elbow, wrist = _limb(start, lengths, angles, spread)
        r = self.arm_r
        self.add("capsule", "arm", *start, *elbow, r, r * 0.9)
        self.add("capsule", "arm", *elbow, *wrist, r * 0.9, r * 0.75)
        extra = 0.004 + 0.006 * up.thickness
        if up.style == "tshirt":
            mid = (start[0] + 0.55 * (elbow[0] - start[0]), start[1] + 0.55 * (elbow[1] - start[1]))
            self.add("capsule", "sleeve", *start, *mid, r + extra, r + extra * 0.8)
        else:
            self.add("capsule", "sleeve", *start, *elbow, r + extra, r * 0.9 + extra)
            self.add("capsule", "sleeve", *elbow, *wrist, r * 0.9 + extra, r * 0.75 + extra * 0.6)
        hand = (wrist[0] + 0.1 * (wrist[0] - elbow[0]), wrist[1] + 0.025)
        self.add("ellipse", "hand", *hand, 0.021 * p.build, 0.026)

    def leg(self, sign: int) -> None:
        p, low = self.p, self.p.lower
        thigh, shin = p.leg_length * 0.5, p.leg_length * 0.44
        if self.side:
            a = sign * self.swing
            start, spread, angles = (0.01 * sign, self.y_hip), 0.0, (a, a - 0.25 * abs(self.swing))
        else:
            a = abs(self.swing) * (0.5 + 0.5 * sign * math.copysign(1, self.swing))
            start, spread = (sign * self.hipw * 0.5, self.y_hip), sign * 0.006
            thigh, shin = thigh * math.cos(a * 0.6), shin * math.cos(a * 0.6)
            angles = (0.0, 0.0)
        knee, ankle = _limb(start, (thigh, shin), angles, spread)
        r = self.leg_r
        self.add("capsule", "leg", *start, *knee, r, r * 0.72)
        self.add("capsule", "leg", *knee, *ankle, r * 0.72, r * 0.55)
        extra = 0.004 + 0.006 * low.thickness
        if low.style == "trousers":
            self.add("capsule", "lower", *start, *knee, r + extra, r * 0.72 + extra)
            self.add("capsule", "lower", *knee, *ankle, r * 0.72 + extra, r * 0.6 + extra)
        elif low.style == "shorts":
            end = (start[0] + 0.75 * (knee[0] - start[0]), start[1] + 0.75 * (knee[1] - start[1]))
            self.add("capsule", "lower", *start, *end, r + extra, r * 0.82 + extra)
        forward = 0.025 if self.side else 0.0
        self.add("ellipse", "shoe", ankle[0] + forward, ankle[1] + 0.022, 0.045 if self.side else 0.03, 0.022)

    def torso(self) -> None:
        up, y_sh, y_hip = self.p.upper, self.y_sh, self.y_hip
        self.add("box", "neck", 0, self.hs * 0.8, 0, y_sh + 0.01, 0.022 * self.p.build, 0.024 * self.p.build)
        hem = y_hip + {"tshirt": 0.02, "longsleeve": 0.02, "jacket": 0.04, "coat": 0.16}[up.style]
        lower_w = self.hipw * (1.25 if up.style == "coat" else 1.05)
        self.add("box", "lower", 0, y_hip - 0.04, 0, y_hip + 0.07, self.hipw * 1.02, self.hipw * 1.08)
        if self.p.lower.style == "skirt":
            self.add("box", "lower", 0, y_hip - 0.03, 0, y_hip + self.p.leg_length * 0.42,
                     self.hipw * 1.05, self.hipw * (1.3 if self.side else 1.75))
        self.add("box", "upper", 0, y_sh, 0, hem, self.sw, lower_w)
        self.add("ellipse", "upper", 0, y_sh + 0.02, self.sw, 0.03)  # rounded shoulders

    def head(self, view: str) -> None:
        p, hs = self.p, self.hs
        cy, rx, ry = hs * 0.5, hs * 0.4, hs * 0.5
        length = p.hair_length
        if view == "back":
            self.add("ellipse", "face", 0, cy, rx, ry)
            self.add("ellipse", "hair", 0, cy - hs * 0.04, rx * 1.06, ry * (0.95 + 0.05 * length))
        elif view == "side":
            self.add("ellipse", "face", 0.1 * hs, cy, rx * 1.05, ry)
            self.add("ellipse", "hair", -0.1 * hs, cy - hs * 0.06, rx * 0.95, ry * 0.92)
        else:
            self.add("ellipse", "hair", 0, cy - hs * 0.05, rx * 1.08, ry * 0.98)
            self.add("ellipse", "face", 0, cy + hs * 0.1, rx * 0.85, ry * 0.82)
        if p.hat is not None:
            s = p.hat.size
            self.add("box", "hat", 0, cy - ry * 0.95 * s, 0, cy - ry * 0.2, rx * 0.95, rx * 1.05)
            self.add("box", "hat", 0, cy - ry * 0.3, 0, cy - ry * 0.15, rx * 1.35, rx * 1.35)

    def long_hair(self) -> None:
        length = self.p.hair_length
        if length == 0:
            return
        hs = self.hs
        bottom = hs + 0.03 + 0.07 * length
        x, half = (-0.22 * hs, 0.28 * hs) if self.side else (0.0, 0.42 * hs)
        self.add("box", "hair", x, hs * 0.45, x, bottom, half, half * (0.8 + 0.12 * length))

    def backpack(self, view: str) -> None:
        bp = self.p.backpack
        if bp is None:
            return
        top, bottom = self.y_sh + 0.02, self.y_sh + 0.02 + 0.22 * bp.size
        if view == "back":
            self.add("box", "backpack", 0, top, 0, bottom, 0.085 * bp.size, 0.095 * bp.size)
        elif view == "side":
            x = -(self.sw + 0.04 * bp.size)
            self.add("box", "backpack", x, top, x, bottom, 0.045 * bp.size, 0.05 * bp.size)

    def straps(self, view: str) -> None:
        if self.p.backpack is not None and view == "front":
            for sign in (-1, 1):
                x = sign * self.sw * 0.6
                self.add("capsule", "strap", x, self.y_sh, x * 0.9, self.y_sh + 0.16, 0.009, 0.009)
        bag = self.p.bag
        if bag is not None:
            side = bag.side * (-1 if view == "back" else 1)
            x = side * (self.hipw + 0.05) if view != "side" else 0.0
            self.add("capsule", "strap", -side * self.sw * 0.7 if view != "side" else 0.0, self.y_sh,
                     x, self.y_hip, 0.007, 0.007)

    def bag(self, near: bool) -> None:
        bag = self.p.bag
        if bag is None:
            return
        view = self.c.view
        side = bag.side * (-1 if view == "back" else 1)
        visible_side = view != "side" or (side > 0) == near
        if not visible_side:
            return
        x = side * (self.hipw + 0.055) if view != "side" else 0.03
        cy = self.y_hip + 0.02
        self.add("box", "bag", x, cy - 0.05 * bag.size, x, cy + 0.06 * bag.size, 0.05 * bag.size,
                 0.055 * bag.size)


def body_shapes(person: Person, capture: Capture) -> list[Shape]:
    """The shapes of ``person`` in ``capture``'s view, ordered back to front (body units, facing +x;
    the rasteriser mirrors x by ``capture.facing``)."""
    b = _Builder(person, capture)
    view = capture.view
    if view == "front":
        b.long_hair()
        for sign in (-1, 1):
            b.leg(sign)
        b.torso()
        for sign in (-1, 1):
            b.arm(sign)
        b.straps(view)
        b.bag(near=True)
        b.head(view)
    elif view == "back":
        for sign in (-1, 1):
            b.leg(sign)
        b.torso()
        for sign in (-1, 1):
            b.arm(sign)
        b.head(view)
        b.long_hair()
        b.backpack(view)
        b.straps(view)
        b.bag(near=True)
    else:  # side: far limbs first, near limbs last
        b.arm(-1)
        b.bag(near=False)
        b.leg(-1)
        b.leg(1)
        b.torso()
        b.long_hair()
        b.head(view)
        b.backpack(view)
        b.arm(1)
        b.straps(view)
        b.bag(near=True)
    return b.shapes
