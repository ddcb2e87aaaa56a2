"""shapes.py — the synthetic "coloured shapes" world of the demo model: a deterministic renderer, its caption
grammar, and a Python twin of the C classifier in tests/shapes_classify.c (for evaluating diffusers renders).

One plain shape on a plain background per 128×128 RGB picture, captioned in a fixed order:

    "a small red star on a blue background, top left"

Rendering is 4× supersampled with PIL and box-filtered down, so edges are anti-aliased. Picture i of a stream
with seed s is a pure function of (s, i): the same on every machine, independent of how many were drawn before.

Usage as a script (writes the classifier's test set, tests/golden/shapes/):
    python tools/shapes.py --golden tests/golden/shapes --count 72
"""
import argparse
import json
import math
import os
import re

import numpy as np
from PIL import Image, ImageDraw

SIZE = 128          # picture side in pixels
SS = 4              # supersampling factor

# Foreground colours: far apart in hue or lightness so a hue/lightness classifier separates them.
FG_COLOURS = {
    "red":    (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green":  (40, 170, 50),
    "cyan":   (40, 210, 230),
    "blue":   (30, 60, 220),
    "purple": (150, 40, 200),
    "white":  (245, 245, 245),
}
# Backgrounds: plain, never the same colour as the shape (see sample_scene).
BG_COLOURS = {
    "black": (15, 15, 15),
    "gray":  (120, 120, 120),
    "white": (245, 245, 245),
    "blue":  (30, 60, 220),
}
ALL_COLOURS = dict(FG_COLOURS, **BG_COLOURS)

SHAPES = ("circle", "square", "triangle", "star", "ring")
# Shapes the base demo model never saw: the demo LoRA (tools/train_lora_demo.py) teaches "cross" (a plus sign)
EXTRA_SHAPES = ("cross",)
SIZES = {"small": 20.0, "large": 32.0}                 # shape "radius" (half the extent) in pixels
OFFSET = 28.0                                          # distance of an off-centre shape from the middle
# Position name -> (dx, dy) in units of OFFSET; y grows downwards.
POSITIONS = {
    "top left": (-1, -1), "top": (0, -1), "top right": (1, -1),
    "left": (-1, 0), "centre": (0, 0), "right": (1, 0),
    "bottom left": (-1, 1), "bottom": (0, 1), "bottom right": (1, 1),
}
RING_INNER = 0.55    # ring hole radius / outer radius
STAR_INNER = 0.42    # star inner radius / outer radius
CROSS_ARM = 0.34     # cross (plus sign) arm half-width / arm length


def caption(scene):
    """The full caption of a scene, in the fixed grammar."""
    return "a %s %s %s on a %s background, %s" % (scene["size"], scene["colour"], scene["shape"],
                                                  scene["background"], scene["position"])


def partial_caption(scene, keep_size, keep_bg, keep_pos):
    """A caption with some optional parts left out (training also sees these, so short prompts work)."""
    s = "a "
    if keep_size:
        s += scene["size"] + " "
    s += scene["colour"] + " " + scene["shape"]
    if keep_bg:
        s += " on a " + scene["background"] + " background"
    if keep_pos:
        s += ", " + scene["position"]
    return s


def parse_caption(text):
    """Inverse of caption(): the scene attributes named in a full caption (raises ValueError otherwise)."""
    m = re.fullmatch(r"a (\w+) (\w+) (\w+) on a (\w+) background, ([a-z ]+)", text)
    if not m:
        raise ValueError("not a shapes caption: %r" % text)
    scene = dict(zip(("size", "colour", "shape", "background", "position"), m.groups()))
    for key, allowed in (("size", SIZES), ("colour", FG_COLOURS), ("shape", SHAPES + EXTRA_SHAPES),
                         ("background", BG_COLOURS), ("position", POSITIONS)):
        if scene[key] not in allowed:
            raise ValueError("unknown %s %r in %r" % (key, scene[key], text))
    return scene


def sample_scene(rng):
    """Draw scene attributes uniformly (background never equal to the foreground colour) plus small jitter."""
    colour = str(rng.choice(list(FG_COLOURS)))
    bgs = [b for b in BG_COLOURS if b != colour]
    scene = {
        "size": str(rng.choice(list(SIZES))),
        "colour": colour,
        "shape": str(rng.choice(SHAPES)),
        "background": str(rng.choice(bgs)),
        "position": str(rng.choice(list(POSITIONS))),
    }
    scene["jitter"] = [float(v) for v in (rng.uniform(0.92, 1.08), rng.uniform(-3, 3), rng.uniform(-3, 3))]
    return scene


def scene_at(seed, index):
    """Scene number `index` of the stream with seed `seed` (independent of all other indices)."""
    return sample_scene(np.random.default_rng([seed, index]))


def _shape_polygons(shape, cx, cy, r):
    """Outline(s) of a shape in supersampled pixel coordinates: list of (kind, points/box)."""
    if shape == "circle":
        return [("ellipse", (cx - r, cy - r, cx + r, cy + r))]
    if shape == "ring":
        ri = r * RING_INNER
        return [("ellipse", (cx - r, cy - r, cx + r, cy + r)), ("hole", (cx - ri, cy - ri, cx + ri, cy + ri))]
    if shape == "square":
        h = 0.85 * r
        return [("polygon", [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)])]
    if shape == "triangle":
        # upright; the base sits a little above the bottom of the circle of radius r so the mass centre is near cy
        return [("polygon", [(cx, cy - r), (cx + r, cy + 0.7 * r), (cx - r, cy + 0.7 * r)])]
    if shape == "cross":
        a = r * CROSS_ARM
        return [("polygon", [(cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a), (cx + r, cy + a),
                             (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r), (cx - a, cy + a), (cx - r, cy + a),
                             (cx - r, cy - a), (cx - a, cy - a)])]
    if shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * STAR_INNER
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return [("polygon", pts)]
    raise ValueError("unknown shape %r" % shape)


def render(scene):
    """RGB uint8 array [SIZE, SIZE, 3] of a scene."""
    n = SIZE * SS
    bg = ALL_COLOURS[scene["background"]]
    fg = ALL_COLOURS[scene["colour"]]
    scale, jx, jy = scene.get("jitter", (1.0, 0.0, 0.0))
    dx, dy = POSITIONS[scene["position"]]
    cx = (SIZE / 2 + dx * OFFSET + jx) * SS
    cy = (SIZE / 2 + dy * OFFSET + jy) * SS
    r = SIZES[scene["size"]] * scale * SS
    img = Image.new("RGB", (n, n), bg)
    d = ImageDraw.Draw(img)
    for kind, geom in _shape_polygons(scene["shape"], cx, cy, r):
        if kind == "ellipse":
            d.ellipse(geom, fill=fg)
        elif kind == "hole":
            d.ellipse(geom, fill=bg)
        else:
            d.polygon(geom, fill=fg)
    return np.asarray(img.resize((SIZE, SIZE), Image.BOX), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Classifier (Python twin of tests/shapes_classify.c; keep the two in step)
# ---------------------------------------------------------------------------------------------------------------

def colour_name(rgb, allowed):
    """Hue/lightness classification of one RGB colour into one of `allowed` names (nearest named colour in a
    hue-weighted space): achromatic colours by lightness, chromatic ones by hue."""
    r, g, b = [float(v) / 255.0 for v in rgb]
    mx, mn = max(r, g, b), min(r, g, b)
    light = (mx + mn) / 2
    chroma = mx - mn
    best, best_d = None, 1e9
    for name in allowed:
        pr, pg, pb = [v / 255.0 for v in ALL_COLOURS[name]]
        pmx, pmn = max(pr, pg, pb), min(pr, pg, pb)
        pl, pc = (pmx + pmn) / 2, pmx - pmn
        d = (light - pl) ** 2 + (chroma - pc) ** 2
        if pc > 0.2 and chroma > 0.08:
            dh = abs(_hue(r, g, b) - _hue(pr, pg, pb))
            dh = min(dh, 360 - dh) / 60.0
            d += dh * dh
        elif pc > 0.2 or chroma > 0.2:
            d += 1.0
        if d < best_d:
            best, best_d = name, d
    return best


def _hue(r, g, b):
    mx, mn = max(r, g, b), min(r, g, b)
    c = mx - mn
    if c <= 0:
        return 0.0
    if mx == r:
        h = ((g - b) / c) % 6
    elif mx == g:
        h = (b - r) / c + 2
    else:
        h = (r - g) / c + 4
    return 60.0 * h


def _largest_region(mask):
    from scipy import ndimage
    lab, n = ndimage.label(mask)          # 4-connected
    if n == 0:
        return None
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


FG_DISTANCE = 60.0   # RGB distance from the background that surely belongs to the shape
MIN_AREA = 30        # smaller regions are noise
LARGE_EXTENT = 46.0  # bounding-box side separating small (≤ 43 px when rendered) from large (≥ 50 px)
PROFILE_BINS = 64
MIN_AMPLITUDE = 0.12
CROSS_FILL = 0.72    # four corners and less of the bounding box filled than this: a cross (plus sign); a square
                     # fills ~0.95 of it, a cross of CROSS_ARM 0.34 ~0.56


def classify(img):
    """Attributes of the shape in an RGB uint8 picture: dict(colour, background, shape, position, size) plus
    the measured features. Names are from the training vocabulary; attributes are None when no shape is found."""
    from scipy import ndimage
    img = np.asarray(img, dtype=np.float32)
    h, w, _ = img.shape
    border = np.concatenate([img[:3].reshape(-1, 3), img[-3:].reshape(-1, 3),
                             img[:, :3].reshape(-1, 3), img[:, -3:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    out = {"background": colour_name(bg_rgb, list(BG_COLOURS)), "colour": None, "shape": None,
           "position": None, "size": None}
    dist = np.sqrt(((img - bg_rgb) ** 2).sum(-1))
    mask = _largest_region(dist > FG_DISTANCE)
    if mask is None or mask.sum() < MIN_AREA:
        return out
    # the shape's edge is where the picture is halfway between background and shape colour
    full = float(np.percentile(dist[mask], 90))
    mask = _largest_region(dist > full / 2)
    area = int(mask.sum())
    # dominant colour: vote over the interior (eroded) pixels, which are free of edge blending
    inner = ndimage.binary_erosion(mask, iterations=2)
    if inner.sum() < 10:
        inner = mask
    votes = {}
    for px in img[inner].reshape(-1, 3)[:: max(1, int(inner.sum()) // 400)]:
        c = colour_name(px, list(FG_COLOURS))
        votes[c] = votes.get(c, 0) + 1
    out["colour"] = max(list(FG_COLOURS), key=lambda c: (votes.get(c, 0), -list(FG_COLOURS).index(c)))
    filled = ndimage.binary_fill_holes(mask)
    nfill = int(filled.sum())
    hole = nfill - area
    ys, xs = np.nonzero(filled)
    bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    corners, amp = _corner_count(filled, cx, cy)
    if hole > 0.08 * nfill:
        shape = "ring"
    elif corners >= 5:
        shape = "star"
    elif corners == 4:
        shape = "cross" if nfill < CROSS_FILL * bw * bh else "square"
    elif corners == 3:
        shape = "triangle"
    else:
        shape = "circle"
    out["shape"] = shape
    dx, dy = cx - w / 2, cy - h / 2
    t = OFFSET / 2 * w / SIZE
    hx = "left" if dx < -t else ("right" if dx > t else "")
    vy = "top" if dy < -t else ("bottom" if dy > t else "")
    out["position"] = (vy + " " + hx).strip() or "centre"
    out["size"] = "large" if max(bw, bh) > LARGE_EXTENT * w / SIZE else "small"
    out.update(corners=corners, amplitude=round(float(amp), 4), hole=hole, area=area, fill=round(nfill / float(bw * bh), 3),
               bbox=[int(xs.min()), int(ys.min()), int(bw), int(bh)])
    return out


def _corner_count(filled, cx, cy):
    """Corners of a solid shape from its radial profile: the farthest boundary distance from the centroid in
    64 angular bins, smoothed and divided by its mean, then the number of rises above the profile's midline
    (hysteresis ±20% of its range). A circle's profile is flat (amplitude < 0.12: 0 corners)."""
    from scipy import ndimage
    nb = PROFILE_BINS
    edge = filled & ~ndimage.binary_erosion(filled)
    ys, xs = np.nonzero(edge)
    px, py = xs + 0.5 - cx, ys + 0.5 - cy
    r = np.hypot(px, py) + 0.5
    b = np.floor((np.arctan2(py, px) + math.pi) / (2 * math.pi) * nb).astype(int) % nb
    prof = np.zeros(nb)
    np.maximum.at(prof, b, r)
    for i in range(nb):                    # an empty bin takes the nearer non-empty neighbour (the larger on a tie)
        if prof[i] == 0:
            for j in range(1, nb):
                a, c = prof[(i - j) % nb], prof[(i + j) % nb]
                if a > 0 or c > 0:
                    prof[i] = max(a, c)
                    break
    prof = (np.roll(prof, 1) + 2 * prof + np.roll(prof, -1)) / 4
    prof = prof / prof.mean()
    amp = prof.max() - prof.min()
    if amp < MIN_AMPLITUDE:
        return 0, amp
    mid, hy = (prof.max() + prof.min()) / 2, 0.2 * amp
    i0 = int(np.argmin(prof))
    above, n = False, 0
    for k in range(nb):
        v = prof[(i0 + k) % nb]
        if not above and v > mid + hy:
            n, above = n + 1, True
        elif above and v < mid - hy:
            above = False
    return n, amp


def score(results):
    """Per-attribute accuracy of [(scene, classified)] pairs."""
    keys = ("colour", "background", "shape", "position", "size")
    return {k: sum(1 for s, c in results if s[k] == c[k]) / float(len(results)) for k in keys}


def _balanced_prompts(count, shape_at, size_period, position_step, seed_at):
    """count (caption, seed) pairs cycling through every colour, each background the colour allows, both sizes
    (switching every size_period prompts) and the positions (position_step apart)."""
    out = []
    pos = list(POSITIONS)
    cols = list(FG_COLOURS)
    for i in range(count):
        colour = cols[i % len(cols)]
        bgs = [b for b in BG_COLOURS if b != colour]
        scene = {"size": ("small", "large")[(i // size_period) % 2], "colour": colour, "shape": shape_at(i),
                 "background": bgs[(i // len(cols) + i) % len(bgs)], "position": pos[(position_step * i) % len(pos)]}
        out.append((caption(scene), seed_at(i)))
    return out


def e2e_prompts(count=32):
    """The fixed prompt × seed list of the end-to-end test: every shape, colour, position and size, and every
    background, in a balanced cycle."""
    return _balanced_prompts(count, lambda i: SHAPES[i % len(SHAPES)], 5, 1, lambda i: 1 + 7 * i)


def lora_prompts(count=24):
    """The fixed prompt × seed list the demo LoRA (samples/models/loras/cross.safetensors) is judged on: crosses of
    every colour, position and size, each background the colour allows."""
    return _balanced_prompts(count, lambda i: "cross", 3, 5, lambda i: 3 + 11 * i)


def write_golden(folder, count, seed):
    """The classifier's test set: `count` renderer pictures (PNG) and their captions (captions.txt, one
    'file<TAB>caption' a line). Every shape × size × position is covered; colours and backgrounds cycle."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    combos = [(sh, sz, p) for sh in SHAPES for sz in SIZES for p in POSITIONS]
    rng.shuffle(combos)
    for i in range(count):
        sh, sz, p = combos[i % len(combos)]
        colour = list(FG_COLOURS)[i % len(FG_COLOURS)]
        bgs = [b for b in BG_COLOURS if b != colour]
        scene = {"size": sz, "colour": colour, "shape": sh, "background": bgs[(i // len(FG_COLOURS)) % len(bgs)],
                 "position": p,
                 "jitter": [float(rng.uniform(0.92, 1.08)), float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))]}
        name = "s%03d.png" % i
        Image.fromarray(render(scene)).save(os.path.join(folder, name), optimize=True)
        lines.append("%s\t%s\n" % (name, caption(scene)))
    with open(os.path.join(folder, "captions.txt"), "w") as f:
        f.write("# written by tools/shapes.py --golden (seed %d): picture<TAB>caption\n" % seed)
        f.writelines(lines)
    with open(os.path.join(folder, "e2e_prompts.txt"), "w") as f:
        f.write("# end-to-end test prompts (tools/shapes.py e2e_prompts): seed<TAB>prompt\n")
        f.writelines("%d\t%s\n" % (sd, p) for p, sd in e2e_prompts())
    # the shapes only LoRAs teach (EXTRA_SHAPES): every size x position, colours and backgrounds cycling
    rng = np.random.default_rng(seed + 1)
    lines = []
    for i, (sh, sz, p) in enumerate((sh, sz, p) for sh in EXTRA_SHAPES for sz in SIZES for p in POSITIONS):
        colour = list(FG_COLOURS)[(3 * i) % len(FG_COLOURS)]
        bgs = [b for b in BG_COLOURS if b != colour]
        scene = {"size": sz, "colour": colour, "shape": sh, "background": bgs[i % len(bgs)], "position": p,
                 "jitter": [float(rng.uniform(0.92, 1.08)), float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))]}
        name = "x%03d.png" % i
        Image.fromarray(render(scene)).save(os.path.join(folder, name), optimize=True)
        lines.append("%s\t%s\n" % (name, caption(scene)))
    with open(os.path.join(folder, "captions_extra.txt"), "w") as f:
        f.write("# written by tools/shapes.py --golden (seed %d): pictures of the shapes only LoRAs teach\n" % (seed + 1))
        f.writelines(lines)
    with open(os.path.join(folder, "lora_prompts.txt"), "w") as f:
        f.write("# demo LoRA test prompts (tools/shapes.py lora_prompts): seed<TAB>prompt\n")
        f.writelines("%d\t%s\n" % (sd, p) for p, sd in lora_prompts())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", help="write the classifier test set to this folder")
    ap.add_argument("--count", type=int, default=72)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--check", type=int, default=0, help="classify this many stream pictures and print accuracy")
    args = ap.parse_args()
    if args.golden:
        write_golden(args.golden, args.count, args.seed)
    if args.check:
        res = []
        for i in range(args.check):
            s = scene_at(args.seed, i)
            c = classify(render(s))
            res.append((s, c))
            if any(s[k] != c[k] for k in ("colour", "background", "shape", "position", "size")):
                print("miss", caption(s), c)
        print(json.dumps(score(res)))


if __name__ == "__main__":
    main()
