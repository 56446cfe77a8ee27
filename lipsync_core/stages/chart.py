"""The chart stage: a 2D character re-dubbed with its own mouth drawings, one drawing per mouth shape.

A *mouth chart* holds a drawing per Hanna-Barbera shape (A-F, extended G, H, X; see
``shared/reference/cues/README.md``). It comes from a folder of images named by shape (``A.png`` ... ``X.png``,
alpha respected, any size: they are scaled together to the mouth box, or, with the folder's ``chart.json`` that
``lipsync chart extract`` writes, placed by the mouth box it records: :data:`CHART_FILE`) or from the clip itself
(:func:`extract_chart`: the mouth crops, stabilised on the mouth's track, grouped into the distinct drawings
the clip shows, each given a shape from its geometry). Each output frame shows the drawing of the cue at its
time, pasted at the tracked mouth with its scale and rotation; a sprite from a folder first covers the mouth
under it with the surrounding colour. Only the mouth region changes: its edge is feathered by ``FEATHER_PX``.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..face.mouthtrack import MouthTrack, Placement, patch_from_crop
from ..support.errors import LipsyncError
from .base import Batch

SHAPES = "ABCDEFGHX"
#: A missing shape shows the first of these that the chart has (the nearest drawing; Rhubarb's own substitutes
#: G -> A, H -> C, X -> A come first for the extended shapes). Every list ends in both closed and both open
#: shapes, so a chart with one closed (A or X) and one open (C or D) drawing resolves every shape.
FALLBACK: Mapping[str, str] = {
    "A": "XGBCD", "B": "CGAXD", "C": "BDHEAX", "D": "CHEBAX", "E": "FCDBAX", "F": "EBAXCD",
    "G": "ABXCD", "H": "CDBAX", "X": "ABCD",
}
CLOSED, OPEN = "AX", "CD"
#: Feathered edge of the pasted region, in pixels of the reference mouth box.
FEATHER_PX = 2
#: Margin around the mouth box in an auto chart's patches, as a fraction of its size on each side.
PATCH_MARGIN = 0.25
#: Beside a folder's drawings: ``{"mouth": [x, y, w, h], "cover": false}``, the mouth box in the drawings' pixels
#: (the drawings are scaled so it matches the run's mouth box and centred on it) and whether the mouth under them
#: is covered first (false: the drawings' alpha already hides it, as an extracted chart's does).
CHART_FILE = "chart.json"
CONTACT_SHEET = "contact_sheet.png"


def chart_files(folder: Path) -> list[Path]:
    """The files of a chart that ``folder`` already holds (drawings named by shape, the chart file, the sheet)."""
    names = [*(f"{shape}.png" for shape in SHAPES), CHART_FILE, CONTACT_SHEET]
    return [folder / n for n in names if (folder / n).exists()]


@dataclass
class MouthChart:
    """BGRA uint8 drawings by shape, each ``size`` (w, h) pixels of the reference mouth box's scale.

    ``cover``: the drawings are sprites over the mouth (a folder's): the original mouth is covered first.
    ``frames``: for an auto chart, the clip frame each drawing was taken from (for the contact sheet).
    ``mouth``: (x, y, w, h) of the reference mouth box in the drawings' pixels (centred), written to
    :data:`CHART_FILE` by :meth:`save`.
    """

    drawings: dict[str, np.ndarray]
    size: tuple[int, int]
    cover: bool
    frames: dict[str, int] = field(default_factory=dict)
    mouth: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        check_chart(self.drawings, "the mouth chart")
        self._resolved = {s: self.drawings[next(c for c in s + FALLBACK[s] if c in self.drawings)] for s in SHAPES}

    def drawing(self, shape: str) -> np.ndarray:
        """The drawing shown for ``shape`` (its own, else the nearest by :data:`FALLBACK`)."""
        return self._resolved[shape]

    def save(self, folder: Path) -> list[Path]:
        """Write ``<shape>.png`` for every drawn shape, ``contact_sheet.png`` and (with ``mouth``)
        :data:`CHART_FILE`; returns the written paths, the contact sheet last."""
        import json

        from ..support import files

        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for shape, img in self.drawings.items():
            ok, data = cv2.imencode(".png", img)
            assert ok
            files.atomic_write_bytes(folder / f"{shape}.png", data.tobytes())
            out.append(folder / f"{shape}.png")
        if self.mouth is not None:
            meta = {"mouth": [round(v, 2) for v in self.mouth], "cover": self.cover}
            files.atomic_write_text(folder / CHART_FILE, json.dumps(meta) + "\n")
            out.append(folder / CHART_FILE)
        ok, data = cv2.imencode(".png", contact_sheet(self))
        assert ok
        files.atomic_write_bytes(folder / CONTACT_SHEET, data.tobytes())
        return [*out, folder / CONTACT_SHEET]


def check_chart(shapes: Iterable[str], where: str) -> None:
    """Raise :class:`LipsyncError` unless ``shapes`` hold a closed (A or X) and an open (C or D) drawing."""
    have = set(shapes)
    missing = [f"a closed drawing ({' or '.join(CLOSED)})" for _ in [0] if not have & set(CLOSED)]
    missing += [f"an open drawing ({' or '.join(OPEN)})" for _ in [0] if not have & set(OPEN)]
    if missing:
        got = ", ".join(sorted(have)) or "none"
        raise LipsyncError(f"{where} needs {' and '.join(missing)}; it has {got} (name the images by shape: "
                           "A.png ... H.png, X.png)")


def load_chart_dir(folder: str | Path, box: tuple[int, int]) -> MouthChart:
    """The drawings ``<shape>.png`` (or .jpg/.webp) of ``folder``, scaled together (keeping their relative sizes)
    so the largest fits the mouth box ``box`` (w, h), each centred on a canvas of that size; with the folder's
    :data:`CHART_FILE`, scaled so its mouth box matches ``box`` and centred on it instead (an extracted chart
    keeps its margin around the mouth)."""
    root = Path(folder)
    if not root.is_dir():
        raise LipsyncError(f"--mouth_chart {folder}: no such folder (give a folder of A.png ... X.png, or auto)")
    raw: dict[str, np.ndarray] = {}
    for path in sorted(root.iterdir()):
        shape = path.stem.upper()
        if len(shape) != 1 or shape not in SHAPES or path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            continue
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise LipsyncError(f"--mouth_chart: {path} is not a readable image")
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
        elif img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
        if img.dtype != np.uint8:
            img = (img / 257).astype(np.uint8)
        raw[shape] = img
    check_chart(raw, f"--mouth_chart {folder}")
    meta = _chart_file(root / CHART_FILE)
    if meta is not None:
        return _placed(raw, box, *meta)
    w, h = box
    k = min(w / max(i.shape[1] for i in raw.values()), h / max(i.shape[0] for i in raw.values()))
    drawings = {}
    for shape, img in raw.items():
        sw, sh = max(1, round(img.shape[1] * k)), max(1, round(img.shape[0] * k))
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        canvas = np.zeros((h, w, 4), np.uint8)
        y, x = (h - sh) // 2, (w - sw) // 2
        canvas[y:y + sh, x:x + sw] = small
        drawings[shape] = canvas
    return MouthChart(drawings, (w, h), cover=True)


def _chart_file(path: Path) -> tuple[tuple[float, float, float, float], bool] | None:
    """(mouth box, cover) from a folder's :data:`CHART_FILE`, None without one; a malformed one is an error."""
    import json

    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        x, y, w, h = (float(v) for v in meta["mouth"])
        cover = meta.get("cover", False)
        if w <= 0 or h <= 0 or not isinstance(cover, bool):
            raise ValueError("the mouth box needs a positive size, cover true or false")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise LipsyncError(f"--mouth_chart: {path} is not a chart file ({exc}); write "
                           '{"mouth": [x, y, w, h], "cover": false} or remove it') from None
    return (x, y, w, h), cover


def _placed(raw: Mapping[str, np.ndarray], box: tuple[int, int], mouth: tuple[float, float, float, float],
            cover: bool) -> MouthChart:
    """Drawings whose ``mouth`` box (x, y, w, h) is known, scaled so it has the area of ``box`` (w, h) and each
    centred on it, on canvases of one size."""
    x, y, w, h = mouth
    k = math.sqrt(box[0] * box[1] / (w * h))
    cx, cy = (x + w / 2) * k, (y + h / 2) * k  # the mouth's centre in the scaled drawings
    half_w = max(max(cx, i.shape[1] * k - cx) for i in raw.values())
    half_h = max(max(cy, i.shape[0] * k - cy) for i in raw.values())
    cw, ch = math.ceil(2 * half_w), math.ceil(2 * half_h)
    drawings = {}
    for shape, img in raw.items():
        # scale by k, then move the mouth's centre to the canvas's centre ((cw - 1) / 2, (ch - 1) / 2)
        m = np.array([[k, 0, (k - 1) / 2 + cw / 2 - cx], [0, k, (k - 1) / 2 + ch / 2 - cy]])
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        drawings[shape] = cv2.warpAffine(img, m, (cw, ch), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                                         borderValue=(0, 0, 0, 0))
    mw, mh = w * k, h * k
    return MouthChart(drawings, (cw, ch), cover=cover, mouth=((cw - mw) / 2, (ch - mh) / 2, mw, mh))


# ---------------------------------------------------------------------------------------------- the auto chart


@dataclass(frozen=True)
class Drawing:
    """One distinct mouth drawing of a clip: its patch, the frames showing it, and its geometry (fractions of
    the mouth box: how open and how wide the mouth is, how much dark inside and teeth it shows)."""

    patch: np.ndarray  # BGR uint8, the auto chart's patch size
    frame: int
    count: int
    open: float
    wide: float
    dark: float
    teeth: float


class TooFewDrawings(LipsyncError):
    """The clip shows fewer than three distinct mouth drawings."""


def patch_size(mouth: tuple[int, int]) -> tuple[int, int]:
    """An auto chart's patch: the mouth box with ``PATCH_MARGIN`` on each side."""
    w, h = mouth
    return w + 2 * round(PATCH_MARGIN * w), h + 2 * round(PATCH_MARGIN * h)


def mouth_patches(frames: Iterable[np.ndarray], track: MouthTrack,
                  frame_size: tuple[int, int] | None = None) -> dict[int, np.ndarray]:
    """The mouth of every placed frame, turned upright at the reference scale (BGR uint8 patches): from the
    track's kept crops (``frame_size`` given) where they hold it, else from ``frames`` (only iterated then)."""
    size = patch_size(track.size)
    out = {}
    for i, p in enumerate(track.placements):
        crop = track.crops.get(i)
        if p is not None and crop is not None and frame_size is not None:
            patch = patch_from_crop(crop, frame_size, p.patch_to_frame(size), size)
            if patch is not None:
                out[i] = patch
    wanted = {i for i, p in enumerate(track.placements) if p is not None and i not in out}
    if not wanted:
        return out
    for i, frame in enumerate(frames):
        if i in wanted:
            out[i] = cv2.warpAffine(frame, track.placements[i].patch_to_frame(size), size,  # type: ignore[union-attr]
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
            wanted.discard(i)
            if not wanted:
                break
    return dict(sorted(out.items()))


def group_drawings(patches: Mapping[int, np.ndarray], mouth: tuple[int, int], *, threshold: float = 9.0,
                   min_frames: int = 2) -> list[Drawing]:
    """The distinct drawings among ``patches``: leader clustering on the mouth box's pixels (mean absolute
    difference in grey levels of a small copy below ``threshold``: the same drawing), clusters of at least
    ``min_frames`` frames, each represented by its medoid frame."""
    if not patches:
        return []
    keys = sorted(patches)
    pw, ph = patch_size(mouth)
    mx, my = (pw - mouth[0]) // 2, (ph - mouth[1]) // 2
    small_w = 32
    small_h = max(4, round(small_w * mouth[1] / mouth[0]))
    vecs = np.stack([cv2.resize(patches[k][my:my + mouth[1], mx:mx + mouth[0]], (small_w, small_h),
                                interpolation=cv2.INTER_AREA).astype(np.float32).ravel() for k in keys])
    leaders: list[int] = []
    for n in range(len(keys)):
        if not leaders or np.abs(vecs[leaders] - vecs[n]).mean(axis=1).min() >= threshold:
            leaders.append(n)
    dist = np.stack([np.abs(vecs - vecs[m]).mean(axis=1) for m in leaders], axis=1)
    label = dist.argmin(axis=1)
    chosen = []
    for c in range(len(leaders)):
        members = np.flatnonzero(label == c)
        if len(members) < min_frames:
            continue
        sub = vecs[members]
        medoid = members[int(np.argmin([np.abs(sub - v).mean() for v in sub]))]
        chosen.append((keys[medoid], len(members)))
    if not chosen:
        return []
    chosen = _merged(chosen, patches, mouth, threshold)
    region = _varies([patches[k] for k, _ in chosen], mouth) > 0
    return [Drawing(patches[k], k, n, *_geometry(patches[k], region)) for k, n in chosen]


#: Clusters closer than this fraction of the median distance between the clip's clusters (and than the
#: clustering threshold), at the best shift of up to ``SHIFT`` of the mouth box, are one drawing seen twice (the
#: track's sub-pixel wobble or a slight turn split it): merged, so they do not take two shapes.
SAME_DRAWING = 0.3
SHIFT = 0.03


def _merged(chosen: list[tuple[int, int]], patches: Mapping[int, np.ndarray], mouth: tuple[int, int],
            threshold: float) -> list[tuple[int, int]]:
    """``chosen`` (frame, count) clusters with the copies of one drawing merged (:data:`SAME_DRAWING`): each
    group keeps the frame of its largest cluster and the summed count."""
    n = len(chosen)
    if n < 3:
        return chosen
    pw, ph = patch_size(mouth)
    mx, my = (pw - mouth[0]) // 2, (ph - mouth[1]) // 2
    s = max(1, round(SHIFT * max(mouth)))
    s = min(s, mx, my)
    core = [patches[k][my:my + mouth[1], mx:mx + mouth[0]].astype(np.float32) for k, _ in chosen]
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            b = patches[chosen[j][0]].astype(np.float32)
            dist[i, j] = dist[j, i] = min(float(np.abs(core[i] - b[my + dy:my + dy + mouth[1],
                                                                    mx + dx:mx + dx + mouth[0]]).mean())
                                          for dy in range(-s, s + 1) for dx in range(-s, s + 1))
    limit = min(threshold, SAME_DRAWING * float(np.median(dist[np.triu_indices(n, 1)])))
    group = list(range(n))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i
    for i, j in zip(*np.nonzero(np.triu(dist < limit, 1))):
        group[root(int(j))] = root(int(i))
    merged: dict[int, list[tuple[int, int]]] = {}
    for i, c in enumerate(chosen):
        merged.setdefault(root(i), []).append(c)
    return [(max(members, key=lambda c: c[1])[0], sum(c[1] for c in members)) for members in merged.values()]


def _geometry(patch: np.ndarray, region: np.ndarray) -> tuple[float, float, float, float]:
    """(open, wide, dark, teeth) of a patch: the drawn mouth's height and width (pixels unlike the skin inside
    ``region``, where the clip's drawings differ), over the region's, and the shares of the region that are dark
    (the inside) and white (teeth)."""
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return 0.0, 0.0, 0.0, 0.0
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    skin = np.median(patch[~region], axis=0) if (~region).any() else np.median(patch.reshape(-1, 3), axis=0)
    box = patch[y0:y1, x0:x1].astype(np.float32)
    inside = region[y0:y1, x0:x1]
    unlike = (np.abs(box - skin).max(axis=2) > 40) & inside
    n, lab, stats, _ = cv2.connectedComponentsWithStats(unlike.astype(np.uint8))
    if n > 1:  # the drawn mouth: the blob with most pixels in the middle columns (not lines at the region's edge)
        mid = lab[:, int(0.35 * lab.shape[1]):max(int(0.35 * lab.shape[1]) + 1, int(0.65 * lab.shape[1]))]
        counts = np.bincount(mid.ravel(), minlength=n)[1:]
        unlike = lab == 1 + int(np.argmax(counts if counts.any() else stats[1:, cv2.CC_STAT_AREA]))
    rows, cols = np.flatnonzero(unlike.sum(axis=1) >= 2), np.flatnonzero(unlike.sum(axis=0) >= 2)
    tall = (rows[-1] - rows[0] + 1) / (y1 - y0) if len(rows) else 0.0
    wide = (cols[-1] - cols[0] + 1) / (x1 - x0) if len(cols) else 0.0
    hsv = cv2.cvtColor(patch[y0:y1, x0:x1], cv2.COLOR_BGR2HSV).astype(np.float32)
    area = max(1, int(inside.sum()))
    dark = float((unlike & (hsv[..., 2] < 90)).sum() / area)
    teeth = float((unlike & (hsv[..., 2] > 190) & (hsv[..., 1] < 60)).sum() / area)
    return float(tall), float(wide), dark, teeth


#: Each shape's geometry (open, wide, dark, teeth), each feature ranked 0-1 among the clip's drawings.
_TARGETS: Mapping[str, tuple[float, float, float, float]] = {
    "X": (0.15, 0.3, 0.0, 0.0), "A": (0.0, 0.55, 0.0, 0.0), "B": (0.4, 0.55, 0.1, 1.0), "C": (0.4, 0.6, 0.15, 0.3),
    "D": (1.0, 1.0, 1.0, 0.3), "E": (0.8, 0.2, 0.2, 0.4), "F": (0.8, 0.0, 0.2, 0.3), "G": (0.3, 0.1, 0.0, 0.3),
    "H": (0.45, 0.6, 0.15, 0.3),
}


def assign_shapes(drawings: Sequence[Drawing], extended: str = "GHX") -> dict[str, Drawing]:
    """Each shape's drawing: the shapes and drawings are matched one to one by geometry (features ranked among
    the drawings, nearest to :data:`_TARGETS`) as far as there are drawings; X is the most frequent closed one.
    Shapes left without a drawing fall back by :data:`FALLBACK` when the chart is used."""
    feats = np.array([[d.open, d.wide, d.dark, d.teeth] for d in drawings], np.float64)
    lo, hi = feats.min(axis=0), feats.max(axis=0)
    ranked = (feats - lo) / np.where(hi > lo, hi - lo, 1.0)
    order = [s for s in "ADCBFEXGH" if s in "ABCDEF" or s in extended.upper()]
    targets = np.array([_TARGETS[s] for s in order])
    cost = np.abs(targets[:, None, :] - ranked[None, :, :]) @ np.array([2.0, 1.0, 1.5, 1.0])
    rows, cols = min_cost_matching(cost)
    out = {order[r]: drawings[c] for r, c in zip(rows, cols)}
    closed = [d for s, d in out.items() if s in "AX"]
    if "X" in out and len(closed) == 2 and out["A"].count > out["X"].count:
        out["A"], out["X"] = out["X"], out["A"]
    return out


def min_cost_matching(cost: np.ndarray) -> tuple[list[int], list[int]]:
    """The one-to-one matching of rows and columns (as many pairs as the smaller side) with the least total
    cost: (rows, columns), sorted by row. The Hungarian method, O(n^2 m) (``scipy.optimize.linear_sum_assignment``
    without importing scipy: the chart's matrices are at most 9 rows)."""
    flip = cost.shape[0] > cost.shape[1]
    a = np.asarray(cost.T if flip else cost, np.float64)
    n, m = a.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    match = np.zeros(m + 1, int)  # column -> its row (1-based; 0: free)
    way = np.zeros(m + 1, int)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            j1 = 1 + int(np.argmin(np.where(free, minv[1:], np.inf)))
            delta = minv[j1]
            u[match[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    pairs = sorted((int(match[j]) - 1, j - 1) for j in range(1, m + 1) if match[j])
    if flip:
        pairs = sorted((c, r) for r, c in pairs)
    return [r for r, _ in pairs], [c for _, c in pairs]


def extract_chart(patches: Mapping[int, np.ndarray], mouth: tuple[int, int], extended: str = "GHX") -> MouthChart:
    """The auto chart of a clip from its stabilised mouth patches (:func:`mouth_patches`). Raises
    :class:`TooFewDrawings` when the clip shows fewer than three distinct drawings."""
    drawings = group_drawings(patches, mouth)
    if len(drawings) < 3:
        raise TooFewDrawings(f"the clip shows {len(drawings)} distinct mouth drawing(s), too few for a chart "
                             "(at least 3); draw the shapes and pass the folder with --mouth_chart DIR")
    shapes = assign_shapes(drawings, extended)
    size = patch_size(mouth)
    alpha = _paste_alpha([d.patch for d in drawings], mouth)
    chart = {s: np.dstack([d.patch, alpha]) for s, d in shapes.items()}
    mouth_at = ((size[0] - mouth[0]) / 2, (size[1] - mouth[1]) / 2, float(mouth[0]), float(mouth[1]))
    return MouthChart(chart, size, cover=False, frames={s: d.frame for s, d in shapes.items()}, mouth=mouth_at)


def _paste_alpha(patches: Sequence[np.ndarray], mouth: tuple[int, int]) -> np.ndarray:
    """Where an auto chart's drawings are pasted: :func:`_varies`, feathered; uint8."""
    grown = _varies(patches, mouth)
    k = 2 * FEATHER_PX + 1
    soft = cv2.GaussianBlur(grown.astype(np.float32), (k, k), 0) if FEATHER_PX else grown.astype(np.float32)
    return np.clip(soft * 255, 0, 255).astype(np.uint8)


def _varies(patches: Sequence[np.ndarray], mouth: tuple[int, int]) -> np.ndarray:
    """Every pixel of the mouth box where the drawings differ from one another, a few pixels wider (uint8 0/1):
    the mouth region of an auto chart."""
    stack = np.stack([p.astype(np.int16) for p in patches])
    varies = (stack.max(axis=0) - stack.min(axis=0)).max(axis=2) > 24
    pw, ph = patches[0].shape[1], patches[0].shape[0]
    mx, my = (pw - mouth[0]) // 2, (ph - mouth[1]) // 2
    inside = np.zeros_like(varies)
    inside[my:ph - my, mx:pw - mx] = True
    varies &= inside
    k = 2 * FEATHER_PX + 1
    n, _ = cv2.connectedComponents(varies.astype(np.uint8))
    if n > 2:  # the largest blob: the mouth (specks where the band's tracking wobbles are left out)
        _, lab, stats, _ = cv2.connectedComponentsWithStats(varies.astype(np.uint8))
        varies = lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return cv2.dilate(varies.astype(np.uint8), np.ones((k, k), np.uint8))


def contact_sheet(chart: MouthChart, cell: int = 160) -> np.ndarray:
    """Every shape's drawing (fallbacks marked ``A=X``) over a grey checkerboard, labelled: a BGR image."""
    cells = []
    for shape in SHAPES:
        img = chart.drawing(shape)
        h, w = img.shape[:2]
        k = (cell - 24) / max(w, h)
        small = cv2.resize(img, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_NEAREST)
        board = np.full((cell, cell, 3), 200, np.uint8)
        board[(np.add.outer(np.arange(cell), np.arange(cell)) // 8) % 2 == 1] = 160
        sh, sw = small.shape[:2]
        y, x = 22, (cell - sw) // 2
        a = small[..., 3:4].astype(np.float32) / 255
        roi = board[y:y + sh, x:x + sw]
        roi[:] = (small[..., :3] * a + roi * (1 - a)).astype(np.uint8)
        own = shape in chart.drawings
        label = shape if own else f"{shape}={next(c for c in FALLBACK[shape] if c in chart.drawings)}"
        if own and shape in chart.frames:
            label += f" (frame {chart.frames[shape]})"
        cv2.putText(board, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0) if own else (0, 0, 160), 1,
                    cv2.LINE_AA)
        cells.append(board)
    rows = [np.hstack(cells[i:i + 3]) for i in range(0, len(cells), 3)]
    return np.vstack(rows)


# ---------------------------------------------------------------------------------------------------- the stage


def _paste(frame: np.ndarray, place: Placement, bgr: np.ndarray, alpha: np.ndarray) -> None:
    """Blend ``bgr`` (float32) with ``alpha`` (float32 0-1), both in patch space, onto ``frame`` in place."""
    ph, pw = alpha.shape
    m = place.patch_to_frame((pw, ph))
    corners = np.array([[0, 0, 1], [pw - 1, 0, 1], [0, ph - 1, 1], [pw - 1, ph - 1, 1]], np.float64) @ m.T
    fh, fw = frame.shape[:2]
    x0, y0 = max(0, int(math.floor(corners[:, 0].min())) - 1), max(0, int(math.floor(corners[:, 1].min())) - 1)
    x1, y1 = min(fw, int(math.ceil(corners[:, 0].max())) + 2), min(fh, int(math.ceil(corners[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    m = m.copy()
    m[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    src = cv2.warpAffine(bgr, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    roi = frame[y0:y1, x0:x1]
    touched = a[..., 0] > 0
    if touched.any():
        mixed = src * a + roi.astype(np.float32) * (1 - a)
        roi[touched] = np.clip(mixed[touched] + 0.5, 0, 255).astype(np.uint8)


def _cover(frame: np.ndarray, place: Placement, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A patch of the surrounding colour (the median of the patch's border on this frame) and the feathered
    ellipse of the mouth box it covers."""
    w, h = size
    patch = cv2.warpAffine(frame, place.patch_to_frame(size), size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    border = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]])
    colour = np.median(border, axis=0).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (((w - 1) / 2, (h - 1) / 2), (w - 2 * FEATHER_PX, h - 2 * FEATHER_PX), 0.0), 1.0, -1)
    k = 2 * FEATHER_PX + 1
    soft = cv2.GaussianBlur(mask, (k, k), 0)
    return np.broadcast_to(colour, (h, w, 3)), soft


@dataclass
class ChartStage:
    """Each output frame shows the chart's drawing for the cue at its time (``index / fps``, held on
    ``hold_frames``), pasted at the mouth's placement on its source frame; frames without one pass through.

    ``cues``: (start, end, shape) seconds, sorted. ``sidecars``: files written beside the output once it is
    complete (suffix -> text: the cue file).
    """

    chart: MouthChart
    track: MouthTrack
    cues: Sequence[tuple[float, float, str]]
    fps: float
    hold_frames: int = 1
    idle: str = "X"
    sidecars: Mapping[str, str] = field(default_factory=dict)
    name: str = "chart"

    def __post_init__(self) -> None:
        self._starts = [c[0] for c in self.cues]
        self._sprites: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for shape in SHAPES:
            img = self.chart.drawing(shape)
            self._sprites[shape] = (img[..., :3].astype(np.float32), img[..., 3].astype(np.float32) / 255)

    def shape_at(self, index: int) -> str:
        """The shape on output frame ``index``."""
        held = index - index % self.hold_frames
        t = held / self.fps + 1e-6
        k = bisect.bisect_right(self._starts, t) - 1
        if k < 0 or t >= self.cues[k][1] and k == len(self.cues) - 1:
            return self.idle
        return self.cues[k][2]

    def __call__(self, batch: Batch) -> None:
        sources = batch.sources if batch.sources is not None else batch.indices
        for j, (out_i, src) in enumerate(zip(batch.indices, sources)):
            place = self.track.placements[src] if src < len(self.track.placements) else None
            if place is None or batch.boxes[j] is None:
                continue
            frame = batch.frames[j]
            if self.chart.cover:
                colour, mask = _cover(frame, place, self.chart.size)
                _paste(frame, place, colour, mask)
            bgr, alpha = self._sprites[self.shape_at(out_i)]
            _paste(frame, place, bgr, alpha)
