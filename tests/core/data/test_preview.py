"""The data preview's mosaic shows each sample whole: small ones enlarged, large ones shrunk (they were
cropped to their top-left corner)."""

import numpy as np

from core.data.preview import mosaic


def tile(grid: np.ndarray, row: int, column: int, cell: int) -> np.ndarray:
    return grid[row * cell:(row + 1) * cell, column * cell:(column + 1) * cell]


def test_a_large_image_is_shrunk_whole_into_its_tile_not_cropped():
    photo = np.zeros((64, 64, 3), dtype=np.uint8)
    photo[:, :] = (200, 30, 30)  # red ...
    photo[48:, 48:] = (30, 200, 30)  # ... with a green bottom-right corner that a crop would cut off
    cell = 40
    shown = tile(mosaic([[photo]], cell=cell), 0, 0, cell)
    green = (shown[:, :, 1] > 150) & (shown[:, :, 0] < 100)
    red = (shown[:, :, 0] > 150) & (shown[:, :, 1] < 100)
    assert green.any() and red.any()
    # the corner is where it was: the lower-right quarter of the drawn picture, about 1/16 of its area
    rows, columns = np.nonzero(green)
    assert rows.min() > cell // 2 and columns.min() > cell // 2
    assert 0.03 < green.sum() / (red.sum() + green.sum()) < 0.1


def test_a_small_image_is_enlarged_by_a_whole_factor_without_blurring():
    digit = np.zeros((8, 8), dtype=np.uint8)
    digit[2:6, 3:5] = 255
    shown = tile(mosaic([[digit]], cell=40), 0, 0, 40)
    drawn = shown[4:36, 4:36, 0]  # 8 px x 4 = 32 px, centred in the 40 px tile
    assert set(np.unique(drawn).tolist()) == {0, 255}  # no in-between greys: nearest-neighbour
    assert (drawn == 255).sum() == 8 * 4 * 4  # each of the 8 lit pixels became a 4 x 4 block
