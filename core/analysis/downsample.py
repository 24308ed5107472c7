"""Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013, "Downsampling Time Series for
Visual Representation", MSc thesis, ch. 4.2), exact and cheap enough for every chart refresh.

Why LTTB and not every k-th point: striding skips the points that shape the picture (a loss
spike, the minimum of a validation curve); LTTB keeps, per bucket, the point that spans the
largest triangle with its neighbours, so spikes and turns survive.

Why it is fast although LTTB is sequential (each bucket's pick depends on the previous pick):
buckets hold only a few points when a few thousand points go down to a thousand. So we compute,
for every bucket and for every point the previous bucket *could* have picked, which point this
bucket would pick: a (buckets, width, width) table, all in numpy. Following the picks through
that table is then a loop of list look-ups, with no numpy call per bucket. Wide buckets (a
million points down to a thousand) would make the table too large; there a per-bucket numpy loop
is used, whose per-call overhead is small next to the bucket's own work.
"""

from __future__ import annotations

import numpy as np

# Above this bucket width the (buckets, width, width) table costs more than a per-bucket loop.
_TABLE_MAX_WIDTH = 32


def lttb_indices(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices into `x`/`y` of the points LTTB keeps, ascending.

    Points where x or y is not finite are dropped first (they have no place on a chart and would
    turn every triangle area into NaN). `x` must be sorted ascending. When at most `n_out` finite
    points remain, all of their indices are returned. The first and last finite points are
    always kept.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-d arrays of the same length, got shapes {x.shape} and {y.shape}")
    n_out = int(n_out)
    if n_out < 2:
        raise ValueError(f"n_out must be at least 2 (the first and last points), got {n_out}")
    xf = x.astype(np.float64, copy=False)
    yf = y.astype(np.float64, copy=False)
    finite = np.flatnonzero(np.isfinite(xf) & np.isfinite(yf))
    n = finite.size
    if n <= n_out:
        return finite
    if n_out == 2:
        return finite[[0, n - 1]]
    if n < x.size:
        xf, yf = xf[finite], yf[finite]
    chosen = _lttb(xf, yf, n_out)
    return finite[chosen] if n < x.size else chosen


def lttb(x: np.ndarray, y: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Downsample the curve (x, y) to `n_out` points with LTTB; see `lttb_indices`."""
    x = np.asarray(x)
    y = np.asarray(y)
    keep = lttb_indices(x, y, n_out)
    return x[keep], y[keep]


def _lttb(xs: np.ndarray, ys: np.ndarray, n_out: int) -> np.ndarray:
    """LTTB on finite float arrays with len(xs) > n_out >= 3; returns n_out ascending indices."""
    n = xs.size
    n_buckets = n_out - 2  # the first and last points are fixed, the rest get one bucket each
    # Bucket i holds points [edges[i], edges[i+1]); edges[-1] == n - 1, the fixed last point.
    # Integer arithmetic, because floor(i * every) in floats can land one short at the last edge.
    edges = np.arange(n_buckets + 1, dtype=np.int64) * (n - 2) // n_buckets + 1
    # Mean of every bucket, plus a last "bucket" that is the last point alone: bucket i's third
    # triangle corner is the mean of bucket i + 1 (the last point for the last bucket).
    sizes = np.diff(np.append(edges, n))
    mean_x = np.add.reduceat(xs, edges) / sizes
    mean_y = np.add.reduceat(ys, edges) / sizes
    cx, cy = mean_x[1:], mean_y[1:]  # (B,)
    width = int(sizes[:-1].max())
    if width <= _TABLE_MAX_WIDTH:
        picks = _picks_by_table(xs, ys, edges, sizes[:-1], width, cx, cy)
    else:
        picks = _picks_by_loop(xs, ys, edges, cx, cy)
    out = np.empty(n_out, dtype=np.int64)
    out[0], out[1:-1], out[-1] = 0, picks, n - 1
    return out


def _triangle_area2(ax, ay, bx, by, cx, cy):
    # Twice the triangle's area, written as in the thesis's reference code; np.argmax, like its
    # strict '>', keeps the first of equal areas (a flat series picks each bucket's first point).
    return np.abs((ax - cx) * (by - ay) - (ax - bx) * (cy - ay))


def _picks_by_table(xs, ys, edges, sizes, width, cx, cy) -> np.ndarray:
    n_buckets = sizes.size
    offsets = np.arange(width)[:, None]
    # Slots run down the first axis and buckets along the last, so every numpy loop below runs
    # over ~1000 buckets rather than over ~5 slots (a 5x difference in speed). Pad slots repeat
    # slot 0: their area equals slot 0's and argmax keeps the first maximum, so they never win.
    index = np.where(offsets < sizes, edges[:-1] + offsets, edges[:-1])  # (W, B)
    bx, by = xs[index], ys[index]  # candidate points of each bucket
    # The previous pick of bucket i is one of bucket i-1's points; for bucket 0 it is point 0.
    ax = np.empty_like(bx)
    ay = np.empty_like(by)
    ax[:, 0], ay[:, 0] = xs[0], ys[0]
    ax[:, 1:], ay[:, 1:] = bx[:, :-1], by[:, :-1]
    # _triangle_area2 expanded as |p*by + q*bx - r| with p, q, r depending only on the previous
    # point, so the (W_prev, W, B) work is three multiply-adds and an abs.
    p = ax - cx
    q = cy - ay
    r = p * ay + ax * q  # (W_prev, B)
    area = p[:, None, :] * by[None, :, :]
    area += q[:, None, :] * bx[None, :, :]
    area -= r[:, None, :]
    np.abs(area, out=area)  # (W_prev, W, B)
    # best[i][k]: the slot bucket i picks when bucket i-1 picked its slot k.
    best = area.argmax(axis=1).T.tolist()
    slots: list[int] = []
    slot = 0  # bucket 0's "previous bucket" is point 0, stored in every slot of column 0
    for row in best:
        slot = row[slot]
        slots.append(slot)
    return index[slots, np.arange(n_buckets)]


def _picks_by_loop(xs, ys, edges, cx, cy) -> np.ndarray:
    n_buckets = edges.size - 1
    picks = np.empty(n_buckets, dtype=np.int64)
    a = 0
    for i in range(n_buckets):
        lo, hi = int(edges[i]), int(edges[i + 1])
        area = _triangle_area2(xs[a], ys[a], xs[lo:hi], ys[lo:hi], cx[i], cy[i])
        a = lo + int(area.argmax())
        picks[i] = a
    return picks
