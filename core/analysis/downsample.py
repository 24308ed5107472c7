"""Chart downsampling: tsdownsample's MinMaxLTTB (Van Der Donckt et al. 2023, "MinMaxLTTB: Leveraging
MinMax-Preselection to Scale LTTB"), plus each curve's extremes.

Why not every k-th point: striding skips the points that shape the picture (a loss spike, the minimum of
a validation curve). LTTB keeps, per bucket, the point spanning the largest triangle with its neighbours;
MinMaxLTTB first keeps each small bin's minimum and maximum, then runs LTTB on those, which is as good
to the eye and far faster (tsdownsample does it in Rust). LTTB can still drop the single highest or
lowest point of a curve, which is the one a reader looks for (the best accuracy, the worst spike), so the
curve's minimum and maximum are always added back.
"""

from __future__ import annotations

import numpy as np


def downsample_indices(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """Ascending indices into `x`/`y` of at most `n_out` points that draw the curve (x, y).

    Points where x or y is not finite are dropped first (they have no place on a chart). `x` must be
    sorted ascending. When at most `n_out` finite points remain, all of their indices are returned.
    The first and last finite points and the smallest and largest y are always kept.
    """
    from tsdownsample import MinMaxLTTBDownsampler

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
    xf, yf = xf[finite], yf[finite]
    extremes = [0, n - 1, int(yf.argmin()), int(yf.argmax())]
    if n_out < 5:  # room for the ends and extremes only
        return finite[np.unique(extremes)[:n_out]]
    picked = MinMaxLTTBDownsampler().downsample(xf, yf, n_out=n_out - 2).astype(np.int64)
    return finite[np.union1d(picked, extremes)]


def downsample(x: np.ndarray, y: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The curve (x, y) with at most `n_out` points; see `downsample_indices`."""
    x = np.asarray(x)
    y = np.asarray(y)
    keep = downsample_indices(x, y, n_out)
    return x[keep], y[keep]
