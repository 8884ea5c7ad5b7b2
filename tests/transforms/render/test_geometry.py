"""The geometry rules (docs/geometry.md, R1-R24), case by case.

Each case is walked over a recording surface: the walker that plans and
composes (`transforms.render.walk`) says every resize, cut, pad and placement
it makes, with sizes and positions, and `plan()` must agree on the output
size. The same case's Cloudinary chain, as the compiler emits it, is checked
to say the same thing: one component per step, in order (R1), an overlay's
sizing and placement in its own component (R12).

Expected values are worked by hand from the rules they name; R15's halves
round down (`//`), R11's sizes half up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from transforms import (
    Delivery,
    InvalidTransformError,
    Limits,
    parse_base_chain,
    parse_render_base,
    parse_transformations,
)
from transforms.cloudinary import CloudinaryAsset
from transforms.cloudinary.compile import to_cloudinary_chain
from transforms.render import Dimensions, RenderChain, plan, walk

A = "b48fff71-a649-41dc-8f35-67229b3fd584"
B = "372083d9-8179-4161-af8c-6cbfecd9219a"
NAMES = {"": "base", A: "A", B: "B"}
LAYERS = {
    A: CloudinaryAsset(public_id="3bc669b21d8e"),
    B: CloudinaryAsset(public_id="e199b75435bf"),
}
LA, LB = "l_authenticated:3bc669b21d8e", "l_authenticated:e199b75435bf"
LIMITS = Limits()
SEED_BASE_CHAIN = "c_fit,h_1920,w_1920/fl_attachment/dpr_auto,q_auto,f_auto"
WHITE, CLEAR = (255, 255, 255, 255), (0, 0, 0, 0)

Op = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Recorder:
    """A `Surface` of sizes that writes down each operation the walker makes."""

    size: Dimensions
    name: str
    log: list[Op] = field(default_factory=list)

    def _as(self, size: Dimensions) -> Recorder:
        return Recorder(size, self.name, self.log)

    def resized(self, size: Dimensions) -> Recorder:
        if size != self.size:  # a resize to the same size draws nothing
            self.log.append(("resize", self.name, size))
        return self._as(size)

    def cut(self, region: Dimensions, at: Dimensions) -> Recorder:
        self.log.append(("cut", self.name, region, at))
        return self._as(region)

    def padded(
        self, size: Dimensions, at: Dimensions, color: tuple[int, int, int, int]
    ) -> Recorder:
        self.log.append(("pad", self.name, size, at, color))
        return self._as(size)

    def turned(self, degrees: int) -> Recorder:
        raise NotImplementedError  # no angle in these cases

    def mirrored(self) -> Recorder:
        return self

    def grayscale(self) -> Recorder:
        return self

    def negated(self) -> Recorder:
        return self

    def bitonal(self) -> Recorder:
        return self

    def faded(self, percent: int) -> Recorder:
        return self

    def placed(
        self, layer: Recorder, size: Dimensions, at: Dimensions, layer_at: Dimensions
    ) -> Recorder:
        self.log.append(("place", layer.name, size, at, layer_at))
        return self._as(size)


def resize(size: Dimensions, name: str = "base") -> Op:
    return ("resize", name, size)


def cut(region: Dimensions, at: Dimensions, name: str = "base") -> Op:
    return ("cut", name, region, at)


def pad(
    size: Dimensions,
    at: Dimensions,
    color: tuple[int, int, int, int] = WHITE,
    name: str = "base",
) -> Op:
    return ("pad", name, size, at, color)


def place(name: str, canvas: Dimensions, base_at: Dimensions, at: Dimensions) -> Op:
    """R17/R18: the grown canvas, where the old canvas went, where the overlay went."""
    return ("place", name, canvas, base_at, at)


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    steps: list[dict[str, object]]
    source: Dimensions
    size: Dimensions
    ops: list[Op]
    chain: str
    layers: dict[str, Dimensions] = field(default_factory=dict)
    base_chain: str | None = None
    alpha: bool = False


def one(
    step: dict[str, object],
    source: Dimensions,
    size: Dimensions,
    ops: list[Op],
    chain: str,
) -> Case:
    return Case(steps=[step], source=source, size=size, ops=ops, chain=chain)


def overlay(
    base: Dimensions,
    layer: Dimensions,
    placement: dict[str, object],
    size: Dimensions,
    base_at: Dimensions,
    at: Dimensions,
    chain: str,
) -> Case:
    """One overlay of `layer`, unsized, placed on a `base` canvas."""
    return Case(
        steps=[{"overlay": A, **placement}],
        source=base,
        layers={A: layer},
        size=size,
        ops=[place("A", size, base_at, at)],
        chain=chain,
    )


# A 10x11 overlay on a 101x100 canvas, x=5, y=7, at each gravity (R14): the
# differences are 91 and 89, so the centred ones fall on R15's floors, 45 and 44.
COMPASS = {
    "north_west": (5, 7),
    "north": (45 + 5, 7),
    "north_east": (91 - 5, 7),
    "west": (5, 44 + 7),
    "center": (45 + 5, 44 + 7),
    "east": (91 - 5, 44 + 7),
    "south_west": (5, 89 - 7),
    "south": (45 + 5, 89 - 7),
    "south_east": (91 - 5, 89 - 7),
}
# c_fill of 300x200 into 100x100 covers at 150x100 (R7): the cut at each gravity.
FILL_AT = {
    "north_west": (0, 0),
    "north": (25, 0),
    "north_east": (50, 0),
    "west": (0, 0),
    "center": (25, 0),
    "east": (50, 0),
    "south_west": (0, 0),
    "south": (25, 0),
    "south_east": (50, 0),
}
# c_pad of 300x200 into 100x101 fits at 100x67 (R8): where it sits on the box.
PAD_AT = {
    "north_west": (0, 0),
    "north": (0, 0),
    "north_east": (0, 0),
    "west": (0, 17),
    "center": (0, 17),
    "east": (0, 17),
    "south_west": (0, 34),
    "south": (0, 34),
    "south_east": (0, 34),
}
# c_crop of 80x50 out of 301x200 (R9): the region at each gravity.
CROP_AT = {
    "north_west": (0, 0),
    "north": (110, 0),
    "north_east": (221, 0),
    "west": (0, 75),
    "center": (110, 75),
    "east": (221, 75),
    "south_west": (0, 150),
    "south": (110, 150),
    "south_east": (221, 150),
}


def tile(x: int) -> dict[str, object]:
    """An 800-wide tile of A at `x`, as the seed's."""
    return {"overlay": A, "crop": "fit", "width": 800, "x": x}


SEED_STEPS: list[dict[str, object]] = [
    {"crop": "fit", "width": 800},
    {"overlay": A, "crop": "fit", "width": 800, "x": 800},
    {"overlay": B, "crop": "fit", "width": 800, "x": 1200},
]
SEED_CHAIN = f"c_fit,w_800/c_fit,{LA},w_800,x_800/c_fit,{LB},w_800,x_1200"

CASES = [
    # R3: "`c_scale,w,h` gives exactly w x h. `c_scale,w` gives w x round(H0·w/W0)."
    pytest.param(
        one({"crop": "scale", "width": 50, "height": 50}, (300, 200), (50, 50),
            [resize((50, 50))], "c_scale,h_50,w_50"),
        id="R3-scale-both-is-exact",
    ),
    pytest.param(
        one({"crop": "scale", "width": 150}, (300, 200), (150, 100),
            [resize((150, 100))], "c_scale,w_150"),
        id="R3-scale-width",
    ),
    pytest.param(
        one({"crop": "scale", "height": 50}, (300, 200), (75, 50),
            [resize((75, 50))], "c_scale,h_50"),
        id="R3-scale-height-mirrors",
    ),
    pytest.param(
        one({"width": 150}, (300, 200), (150, 100), [resize((150, 100))], "w_150"),
        id="R3-no-crop-mode-scales",
    ),
    pytest.param(
        one({"crop": "scale", "width": 300}, (3, 2), (300, 200),
            [resize((300, 200))], "c_scale,w_300"),
        id="R3-scale-upscales",
    ),
    # "round means round-half-up": 27·13/6 = 58.5 is 59 (in doubles 27 x (13 / 6)
    # is 58.4999...).
    pytest.param(
        one({"crop": "scale", "width": 13}, (6, 27), (13, 59),
            [resize((13, 59))], "c_scale,w_13"),
        id="R3-an-exact-half-rounds-up",
    ),
    # R4: "`c_fit,w,h` uses s = min(w/W0, h/H0) ... Upscaling happens when s > 1."
    pytest.param(
        one({"crop": "fit", "width": 100, "height": 100}, (300, 200), (100, 67),
            [resize((100, 67))], "c_fit,h_100,w_100"),
        id="R4-fit",
    ),
    pytest.param(
        one({"crop": "fit", "width": 600, "height": 600}, (300, 200), (600, 400),
            [resize((600, 400))], "c_fit,h_600,w_600"),
        id="R4-fit-upscales",
    ),
    # s = 41/800; 1200·41/800 = 61.5 is 62.
    pytest.param(
        one({"crop": "fit", "width": 100, "height": 41}, (1200, 800), (62, 41),
            [resize((62, 41))], "c_fit,h_41,w_100"),
        id="R4-an-exact-half-rounds-up",
    ),
    # R11: "an 864x576 image fitted to 70x90 giving 70x47".
    pytest.param(
        one({"crop": "fit", "width": 70, "height": 90}, (864, 576), (70, 47),
            [resize((70, 47))], "c_fit,h_90,w_70"),
        id="R11-documented-example",
    ),
    pytest.param(
        one({"crop": "fit", "width": 100}, (4000, 1), (100, 1),
            [resize((100, 1))], "c_fit,w_100"),
        id="R11-never-below-one-pixel",
    ),
    pytest.param(
        one({"crop": "fit", "width": 100, "height": 100}, (1, 4000), (1, 100),
            [resize((1, 100))], "c_fit,h_100,w_100"),
        id="R11-a-1x4000-strip-keeps-a-pixel",
    ),
    # R5: "`c_fit` with only w, or only h, behaves like `c_scale` ... (upscaling
    # included)".
    pytest.param(
        one({"crop": "fit", "width": 900}, (300, 200), (900, 600),
            [resize((900, 600))], "c_fit,w_900"),
        id="R5-fit-width-upscales",
    ),
    pytest.param(
        one({"crop": "fit", "height": 41}, (1200, 800), (62, 41),
            [resize((62, 41))], "c_fit,h_41"),
        id="R5-fit-height-an-exact-half-rounds-up",
    ),
    # R6: "`c_limit` is R4/R5 when s < 1; otherwise the image is unchanged. With
    # only w, compare against W0 only".
    pytest.param(
        one({"crop": "limit", "width": 600, "height": 600}, (300, 200), (300, 200),
            [], "c_limit,h_600,w_600"),
        id="R6-limit-refuses-to-upscale",
    ),
    pytest.param(
        one({"crop": "limit", "width": 150, "height": 600}, (300, 200), (150, 100),
            [resize((150, 100))], "c_limit,h_600,w_150"),
        id="R6-limit-shrinks-on-the-smaller-scale",
    ),
    pytest.param(
        one({"crop": "limit", "width": 400}, (300, 2000), (300, 2000),
            [], "c_limit,w_400"),
        id="R6-limit-width-compares-W0-only",
    ),
    pytest.param(
        one({"crop": "limit", "height": 100}, (300, 200), (150, 100),
            [resize((150, 100))], "c_limit,h_100"),
        id="R6-limit-height-shrinks",
    ),
    pytest.param(
        one({"crop": "limit", "width": 300}, (300, 200), (300, 200),
            [], "c_limit,w_300"),
        id="R6-limit-at-s-1-is-unchanged",
    ),
    # R7: "`c_fill,w,h` uses s = max(w/W0, h/H0), resizes, then crops w x h at
    # gravity (default center). It upscales."
    pytest.param(
        one({"crop": "fill", "width": 100, "height": 100}, (300, 200), (100, 100),
            [resize((150, 100)), cut((100, 100), (25, 0))], "c_fill,h_100,w_100"),
        id="R7-fill-at-the-centre",
    ),
    pytest.param(
        one({"crop": "fill", "width": 600, "height": 100}, (300, 200), (600, 100),
            [resize((600, 400)), cut((600, 100), (0, 150))], "c_fill,h_100,w_600"),
        id="R7-fill-upscales",
    ),
    pytest.param(
        one({"crop": "fill", "width": 100, "height": 100}, (200, 300), (100, 100),
            [resize((100, 150)), cut((100, 100), (0, 25))], "c_fill,h_100,w_100"),
        id="R7-fill-a-tall-image",
    ),
    # s = 213/52; 182·213/52 = 745.5 is 746, cut at (746 - 236) // 2.
    pytest.param(
        one({"crop": "fill", "width": 213, "height": 236}, (52, 182), (213, 236),
            [resize((213, 746)), cut((213, 236), (0, 255))], "c_fill,h_236,w_213"),
        id="R7-fill-cover-an-exact-half-rounds-up",
    ),
    pytest.param(
        one({"crop": "fill", "width": 100, "height": 100}, (4000, 1), (100, 100),
            [resize((400000, 100)), cut((100, 100), (199950, 0))],
            "c_fill,h_100,w_100"),
        id="R7-fill-a-4000x1-strip",
    ),
    # "`c_lfill` does not upscale when both dimensions are already smaller."
    pytest.param(
        one({"crop": "lfill", "width": 600, "height": 400}, (300, 200), (300, 200),
            [], "c_lfill,h_400,w_600"),
        id="R7-lfill-refuses-to-upscale",
    ),
    pytest.param(
        one({"crop": "lfill", "width": 100, "height": 100}, (600, 400), (100, 100),
            [resize((150, 100)), cut((100, 100), (25, 0))], "c_lfill,h_100,w_100"),
        id="R7-lfill-shrinks-as-fill",
    ),
    # R8: "`c_pad,w,h` fits (R4, upscaling allowed), then places the image on a
    # w x h canvas at gravity (default center)"; "white for JPEG output and
    # transparent for alpha formats".
    pytest.param(
        one({"crop": "pad", "width": 100, "height": 100}, (300, 200), (100, 100),
            [resize((100, 67)), pad((100, 100), (0, 16))], "c_pad,h_100,w_100"),
        id="R8-pad-white-under-jpeg",
    ),
    pytest.param(
        Case(steps=[{"crop": "pad", "width": 100, "height": 100}], source=(300, 200),
             size=(100, 100), ops=[resize((100, 67)), pad((100, 100), (0, 16), CLEAR)],
             chain="c_pad,h_100,w_100", alpha=True),
        id="R8-pad-transparent-with-alpha",
    ),
    pytest.param(
        one({"crop": "pad", "width": 100, "height": 100, "background": "#00ff0080"},
            (300, 200), (100, 100),
            [resize((100, 67)), pad((100, 100), (0, 16), (0, 255, 0, 128))],
            "b_rgb:00ff0080,c_pad,h_100,w_100"),
        id="R8-pad-colour-from-b",
    ),
    pytest.param(
        one({"crop": "pad", "width": 600, "height": 600}, (30, 20), (600, 600),
            [resize((600, 400)), pad((600, 600), (0, 100))], "c_pad,h_600,w_600"),
        id="R8-pad-upscales",
    ),
    # s = 91/130; 45·91/130 = 31.5 is 32, on the box's south edge: 275 - 32.
    pytest.param(
        one({"crop": "pad", "width": 91, "height": 275, "gravity": "south"},
            (130, 45), (91, 275), [resize((91, 32)), pad((91, 275), (0, 243))],
            "c_pad,g_south,h_275,w_91"),
        id="R8-pad-an-exact-half-rounds-up",
    ),
    pytest.param(
        one({"crop": "pad", "width": 3, "height": 3}, (2, 1), (3, 3),
            [resize((3, 2)), pad((3, 3), (0, 0))], "c_pad,h_3,w_3"),
        id="R8-pad-a-2x1-image-odd-half-floors",
    ),
    # "`c_lpad` is the same but never upscales."
    pytest.param(
        one({"crop": "lpad", "width": 600, "height": 600}, (30, 20), (600, 600),
            [pad((600, 600), (285, 290))], "c_lpad,h_600,w_600"),
        id="R8-lpad-refuses-to-upscale",
    ),
    pytest.param(
        one({"crop": "lpad", "width": 3, "height": 3}, (1, 1), (3, 3),
            [pad((3, 3), (1, 1))], "c_lpad,h_3,w_3"),
        id="R8-lpad-a-single-pixel",
    ),
    pytest.param(
        one({"crop": "lpad", "width": 100, "height": 100}, (300, 200), (100, 100),
            [resize((100, 67)), pad((100, 100), (0, 16))], "c_lpad,h_100,w_100"),
        id="R8-lpad-shrinks-as-pad",
    ),
    # R9: "`c_crop,w,h` cuts out w x h without scaling, at gravity (default center).
    # A region larger than the image is clamped to the image."
    pytest.param(
        one({"crop": "crop", "width": 100, "height": 50}, (301, 200), (100, 50),
            [cut((100, 50), (100, 75))], "c_crop,h_50,w_100"),
        id="R9-crop-at-the-centre",
    ),
    pytest.param(
        one({"crop": "crop", "width": 500, "height": 500}, (300, 200), (300, 200),
            [], "c_crop,h_500,w_500"),
        id="R9-crop-larger-than-the-image-is-the-image",
    ),
    pytest.param(
        one({"crop": "crop", "width": 500, "height": 50}, (300, 200), (300, 50),
            [cut((300, 50), (0, 75))], "c_crop,h_50,w_500"),
        id="R9-crop-clamped-on-one-side",
    ),
    # R10: "emulate it as `c_fill` with center gravity".
    pytest.param(
        one({"crop": "thumb", "width": 50, "height": 50}, (300, 200), (50, 50),
            [resize((75, 50)), cut((50, 50), (12, 0))], "c_thumb,h_50,w_50"),
        id="R10-thumb-is-fill-at-the-centre",
    ),
    # R12: "apply the sizing options of that component ... to the overlay image";
    # R13: "left = (BW-ow)/2 + x and top = (BH-oh)/2 + y".
    pytest.param(
        Case(steps=[{"overlay": A, "crop": "scale", "width": 20, "height": 10}],
             source=(100, 100), layers={A: (300, 300)}, size=(100, 100),
             ops=[resize((20, 10), "A"), place("A", (100, 100), (0, 0), (40, 45))],
             chain=f"c_scale,h_10,{LA},w_20"),
        id="R12-R13-overlay-sized-then-centred",
    ),
    *(
        pytest.param(
            overlay((101, 100), (10, 11), {"gravity": g, "x": 5, "y": 7}, (101, 100),
                    (0, 0), at, f"g_{g},{LA},x_5,y_7"),
            id=f"R14-R15-overlay-{g}",
        )
        for g, at in COMPASS.items()
    ),
    pytest.param(
        overlay((101, 100), (10, 11), {"x": 5, "y": 7}, (101, 100), (0, 0),
                (50, 51), f"{LA},x_5,y_7"),
        id="R13-default-gravity-is-center",
    ),
    # R15: "use floor (`//`) consistently": (10 - 13) // 2 is -2.
    pytest.param(
        overlay((10, 10), (13, 13), {}, (13, 13), (2, 2), (0, 0), LA),
        id="R15-a-negative-odd-half-floors",
    ),
    # R17: "the canvas becomes the bounding box ... Nothing is cropped."
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "north_west", "x": 200},
                (210, 100), (0, 0), (200, 0), f"g_north_west,{LA},x_200"),
        id="R17-an-overlay-past-the-right-edge-grows-the-canvas",
    ),
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "north_east", "x": -20},
                (120, 100), (0, 0), (110, 0), f"g_north_east,{LA},x_-20"),
        id="R17-north-east-negative-x-points-outwards",
    ),
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "south_east", "y": -20},
                (100, 120), (0, 0), (90, 110), f"g_south_east,{LA},y_-20"),
        id="R17-south-east-negative-y-points-outwards",
    ),
    # R18: "An overlay extending left or up shifts the base right or down."
    pytest.param(
        overlay((800, 600), (800, 600), {"x": -900}, (1700, 600), (900, 0), (0, 0),
                f"{LA},x_-900"),
        id="R18-a-negative-x-past-the-left-edge-shifts-the-base-right",
    ),
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "north", "y": -50}, (100, 150),
                (0, 50), (45, 0), f"g_north,{LA},y_-50"),
        id="R18-a-negative-y-shifts-the-base-down",
    ),
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "east", "x": 200}, (210, 100),
                (110, 0), (0, 45), f"g_east,{LA},x_200"),
        id="R18-east-x-past-the-far-edge-shifts-the-base-right",
    ),
    pytest.param(
        overlay((100, 100), (10, 10), {"gravity": "south_west", "x": -5, "y": 300},
                (105, 310), (5, 210), (0, 0), f"g_south_west,{LA},x_-5,y_300"),
        id="R18-off-the-top-left-corner",
    ),
    # R20: "an overlay taller than the base grows the canvas equally up and down;
    # a shorter one leaves background above and below."
    pytest.param(
        overlay((100, 100), (10, 300), {}, (100, 300), (0, 100), (45, 0), LA),
        id="R20-a-taller-overlay-grows-both-ways",
    ),
    pytest.param(
        overlay((100, 100), (10, 50), {}, (100, 100), (0, 0), (45, 25), LA),
        id="R20-a-shorter-overlay-leaves-the-canvas",
    ),
    # R21: "after `c_fit,w_800` the base is 800x600; after A the canvas is
    # 1600x1200, with A at (800, 0) and the base at (0, 300); after B the canvas
    # is 2400x1200, with B at (1600, 400)."
    pytest.param(
        Case(steps=SEED_STEPS, source=(1000, 750), layers={A: (600, 900), B: (800, 400)},
             size=(2400, 1200),
             ops=[resize((800, 600)), resize((800, 1200), "A"),
                  place("A", (1600, 1200), (0, 300), (800, 0)),
                  place("B", (2400, 1200), (0, 0), (1600, 400))],
             chain=SEED_CHAIN),
        id="R21-worked-example",
    ),
    # "the i-th extra tile (i ≥ 1) of width W needs x = (i+1)·W/2".
    pytest.param(
        Case(steps=[{"crop": "fit", "width": 800}, tile(800), tile(1200), tile(1600)],
             source=(1600, 1200), layers={A: (400, 300)}, size=(3200, 600),
             ops=[resize((800, 600)), resize((800, 600), "A"),
                  place("A", (1600, 600), (0, 0), (800, 0)),
                  resize((800, 600), "A"), place("A", (2400, 600), (0, 0), (1600, 0)),
                  resize((800, 600), "A"), place("A", (3200, 600), (0, 0), (2400, 0))],
             chain=f"c_fit,w_800/c_fit,{LA},w_800,x_800/c_fit,{LA},w_800,x_1200/"
             f"c_fit,{LA},w_800,x_1600"),
        id="R21-four-tiles-at-(i+1)W/2",
    ),
    # R1 with the seed's base chain on 3000x2000 originals: c_fit,h_1920,w_1920
    # upscales nothing here (s = 0.64), then c_fit,w_800 (533.33 is 533); R23,
    # R24: fl_attachment, dpr_auto (1.0), q_auto, f_auto change no size.
    pytest.param(
        Case(steps=SEED_STEPS, source=(3000, 2000),
             layers={A: (3000, 2000), B: (3000, 2000)}, size=(2400, 533),
             ops=[resize((1920, 1280)), resize((800, 533)), resize((800, 533), "A"),
                  place("A", (1600, 533), (0, 0), (800, 0)), resize((800, 533), "B"),
                  place("B", (2400, 533), (0, 0), (1600, 0))],
             chain=f"{SEED_BASE_CHAIN}/{SEED_CHAIN}", base_chain=SEED_BASE_CHAIN),
        id="R1-R22-R24-seed-with-its-base-chain",
    ),
    # R24: "`dpr_N` multiplies the pixel dimensions of the transformation."
    pytest.param(
        Case(steps=[{"crop": "fit", "width": 400},
                    {"overlay": A, "crop": "fit", "width": 400, "x": 400}],
             source=(1000, 750), layers={A: (1000, 750)}, size=(1600, 600),
             ops=[resize((800, 600)), resize((800, 600), "A"),
                  place("A", (1600, 600), (0, 0), (800, 0))],
             chain=f"dpr_2/c_fit,w_400/c_fit,{LA},w_400,x_400", base_chain="dpr_2"),
        id="R24-dpr-2-doubles-sizes-and-offsets",
    ),
    # R24 with R11 exact: 45 x 0.7 is 31.5, which rounds up to 32 (in doubles
    # it is 31.499...); 50 x 0.29 is 14.5, 15; the offset 100 x 0.29 is 29
    # (28.999... in doubles, truncated to 28).
    pytest.param(
        Case(steps=[{"crop": "fit", "width": 45}], source=(1000, 750),
             size=(32, 24), ops=[resize((32, 24))],
             chain="dpr_0.7/c_fit,w_45", base_chain="dpr_0.7"),
        id="R24-R11-dpr-0.7-half-up",
    ),
    pytest.param(
        Case(steps=[{"crop": "crop", "width": 50, "height": 50, "x": 100, "y": 100}],
             source=(1000, 750), size=(15, 15), ops=[cut((15, 15), (29, 29))],
             chain="dpr_0.29/c_crop,h_50,w_50,x_100,y_100", base_chain="dpr_0.29"),
        id="R24-R11-dpr-0.29-sizes-and-offsets",
    ),
    # R1: "Each component's input is the full output of the previous one,
    # including any earlier overlays and expanded canvas."
    pytest.param(
        Case(steps=[
                {"crop": "fit", "width": 400},
                {"overlay": A, "crop": "scale", "width": 100, "height": 50,
                 "gravity": "north_east", "x": 10, "y": 10},
                {"overlay": B, "gravity": "west", "x": -30},
                {"crop": "crop", "width": 200, "height": 100, "gravity": "south_east"},
                {"crop": "pad", "width": 300, "height": 300},
             ],
             source=(1000, 750), layers={A: (200, 200), B: (50, 50)}, size=(300, 300),
             ops=[resize((400, 300)), resize((100, 50), "A"),
                  place("A", (400, 300), (0, 0), (290, 10)),
                  place("B", (430, 300), (30, 0), (0, 125)),
                  cut((200, 100), (230, 200)), resize((300, 150)),
                  pad((300, 300), (0, 75), CLEAR)],
             chain=f"c_fit,w_400/c_scale,g_north_east,h_50,{LA},w_100,x_10,y_10/"
             f"g_west,{LB},x_-30/c_crop,g_south_east,h_100,w_200/c_pad,h_300,w_300",
             alpha=True),
        id="R1-a-chain-of-five-steps",
    ),
    *(
        pytest.param(
            one({"crop": "fill", "width": 100, "height": 100, "gravity": g},
                (300, 200), (100, 100), [resize((150, 100)), cut((100, 100), at)],
                f"c_fill,g_{g},h_100,w_100"),
            id=f"R7-fill-{g}",
        )
        for g, at in FILL_AT.items()
    ),
    *(
        pytest.param(
            one({"crop": "pad", "width": 100, "height": 101, "gravity": g},
                (300, 200), (100, 101), [resize((100, 67)), pad((100, 101), at)],
                f"c_pad,g_{g},h_101,w_100"),
            id=f"R8-pad-{g}",
        )
        for g, at in PAD_AT.items()
    ),
    *(
        pytest.param(
            one({"crop": "crop", "width": 80, "height": 50, "gravity": g},
                (301, 200), (80, 50), [cut((80, 50), at)], f"c_crop,g_{g},h_50,w_80"),
            id=f"R9-crop-{g}",
        )
        for g, at in CROP_AT.items()
    ),
]  # fmt: skip


def walked(case: Case) -> tuple[RenderChain, Dimensions, list[Op]]:
    base = parse_render_base(case.base_chain, LIMITS) if case.base_chain else None
    chain = RenderChain.build(
        base or ((), Delivery()), parse_transformations(case.steps)
    )
    log: list[Op] = []
    out = walk(
        chain,
        Recorder(case.source, "base", log),
        lambda key: Recorder(case.layers[key], NAMES[key], log),
        LIMITS,
        alpha_output=case.alpha,
    )
    return chain, out.size, log


@pytest.mark.parametrize("case", CASES)
def test_the_walker_resizes_cuts_pads_and_places_as_the_rules_say(case: Case) -> None:
    _, size, log = walked(case)
    assert log == case.ops
    assert size == case.size


@pytest.mark.parametrize("case", CASES)
def test_the_plan_has_the_size_the_rules_give(case: Case) -> None:
    chain, _, _ = walked(case)
    planned = plan(chain, case.source, case.layers, LIMITS, alpha_output=case.alpha)
    assert planned.size == case.size


@pytest.mark.parametrize("case", CASES)
def test_the_cloudinary_chain_says_the_same_steps(case: Case) -> None:
    base_chain = parse_base_chain(case.base_chain) if case.base_chain else ()
    compiled = to_cloudinary_chain(
        parse_transformations(case.steps), overlays=LAYERS, base_chain=base_chain
    )
    assert compiled == case.chain


@pytest.mark.parametrize(
    "step",
    [
        pytest.param({"overlay": A, "x": 0.2}, id="x"),
        pytest.param({"overlay": A, "y": 0.5}, id="y"),
        pytest.param({"crop": "crop", "width": 10, "x": 1.0}, id="crop-x"),
    ],
)
def test_a_fractional_offset_is_refused_not_read_as_pixels(
    step: dict[str, object],
) -> None:
    """R16: a decimal x or y is a fraction of the canvas; tokens carry whole pixels."""
    with pytest.raises(InvalidTransformError):
        parse_transformations([step])


def test_a_fractional_offset_in_the_base_chain_is_refused() -> None:
    with pytest.raises(InvalidTransformError):
        parse_render_base("c_crop,w_10,x_0.2", LIMITS)
