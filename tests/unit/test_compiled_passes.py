"""The compiled loops of the passes that stream every row: the same answers as numpy.

Binning, bin seeds, labels and flat-kernel sums of blocks read once switch to
compiled loops (numba) from a number of rows; here that threshold is lowered
so that small fixed blocks take both ways, and the answers are compared:
cells and counts equal, labels equal, rows within the bandwidth of each center
equal (counts exactly; float64 sums in another order, within the
recursive-summation bound).
"""

from __future__ import annotations

import numpy as np
import pytest

from dist_meanshift._blocks import (
    assign_labels,
    bin_counts,
    binning,
    cell_sums,
    labels,
    shift_partial_sums,
)
from dist_meanshift._blocks.kernels import flat

RNG = np.random.default_rng(7)
BLOBS = np.concatenate(
    [RNG.normal(loc, 1.0, size=(3000, 3)) for loc in ([0, 0, 0], [6, 1, -4], [9, 9, 9])]
)


@pytest.fixture
def compiled(monkeypatch):
    """Every block large enough for the compiled loops."""
    monkeypatch.setattr(binning, "COMPILED_MIN_ROWS", 1)
    monkeypatch.setattr(labels, "COMPILED_MIN_ROWS", 1)
    monkeypatch.setattr(flat, "_ROW_SUMS_MIN_ROWS", 1)


def _numpy(fn, *args, **kwargs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(binning, "COMPILED_MIN_ROWS", 1 << 60)
        mp.setattr(labels, "COMPILED_MIN_ROWS", 1 << 60)
        mp.setattr(flat, "_ROW_SUMS_MIN_ROWS", 1 << 60)
        mp.setattr(binning, "_loops_loaded", lambda: False)
        return fn(*args, **kwargs)


def _blocks_of(dtype, weighted):
    X = BLOBS.astype(dtype)
    # Rows on cell edges and on halves of bins: rounding half to even.
    X[:200] = (np.round(X[:200] * 2) / 2 * 0.75).astype(dtype)
    w = RNG.random(len(X)) if weighted else None
    return X, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("fn", "size"), [(bin_counts, 0.75), (cell_sums, 0.3)])
def test_cell_tables_equal_numpys(compiled, dtype, weighted, fn, size):
    X, w = _blocks_of(dtype, weighted)
    got = fn(X, size, w)
    want = _numpy(fn, X, size, w)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_cell_tables_of_far_float32_rows_divide_in_float64(compiled):
    # float32 cannot tell cells of 1e-3 apart at 1e5: both ways divide in float64.
    X = (1e5 + RNG.random((5000, 2))).astype(np.float32)
    for a, b in zip(bin_counts(X, 1e-3), _numpy(bin_counts, X, 1e-3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cell_tables_grow_past_their_first_slots(compiled):
    # More occupied cells than the hash table's first slots: it doubles.
    X = RNG.random((50_000, 2)) * 300
    cells, counts = bin_counts(X, 1.0)
    want_cells, want_counts = _numpy(bin_counts, X, 1.0)
    assert len(cells) > 1 << 14
    np.testing.assert_array_equal(cells, want_cells)
    np.testing.assert_array_equal(counts, want_counts)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("fn", "combine", "size"),
    [
        (bin_counts, binning.combine_bin_counts, 0.75),
        (cell_sums, binning.combine_cell_sums, 0.3),
    ],
)
def test_cell_tables_merge_as_numpys_sort_adds_them(
    compiled, weighted, fn, combine, size
):
    X, w = _blocks_of(np.float64, weighted)
    if weighted:
        w[X[:, 0] > 8] = 0.0  # cells of weightless rows only: dropped both ways
    # Three blocks, each over a grid of its own (shifted ranges, an empty one).
    blocks = [slice(0, 4000), slice(4000, 4000), slice(4000, 9000)]
    parts = [fn(X[b], size, None if w is None else w[b]) for b in blocks]
    parts.append(fn(X[::7] + 50, size, None if w is None else w[::7]))
    got = combine(*parts)
    want = _numpy(combine, *parts)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # the same sums, to the bit
    if fn is cell_sums:
        # In two steps, as the tree of pairs on a cluster merges them.
        steps = combine(combine(parts[0], parts[2]), parts[3])
        want = _numpy(combine, parts[0], parts[2], parts[3])
        for a, b in zip(steps, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_cell_tables_of_far_cells_merge_by_sorting(compiled):
    # A grid whose keys would not fit an int64 (or whose span overflows it).
    far = (np.array([[0, 0], [2**62, -(2**62)]]), np.array([1.0, 2.0]))
    near = (np.array([[0, 0], [1, 1]]), np.array([3.0, 4.0]))
    cells, counts = binning.combine_bin_counts(far, near)
    np.testing.assert_array_equal(cells, [[0, 0], [1, 1], [2**62, -(2**62)]])
    np.testing.assert_array_equal(counts, [4.0, 4.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bandwidth", [None, 1.5])
def test_labels_equal_numpys(compiled, dtype, bandwidth):
    X = BLOBS.astype(dtype)
    centers = np.array([[0, 0, 0], [6, 1, -4], [9, 9, 9], [3, 0.5, -2]], float)
    np.testing.assert_array_equal(
        assign_labels(X, centers, bandwidth),
        _numpy(assign_labels, X, centers, bandwidth),
    )


def test_labels_break_ties_to_the_lowest_center_and_keep_rows_at_h(compiled):
    X = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [5.0, 0.0]])
    centers = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    # Row 1 is 1 from centers 0 and 1 (tie: 0); row 2 is exactly h = 1 away.
    np.testing.assert_array_equal(assign_labels(X, centers, 1.0), [1, 0, 0, -1])
    np.testing.assert_array_equal(assign_labels(X, centers), [1, 0, 0, 0])


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("scale", [1.0, 1e-6])
@pytest.mark.parametrize("bandwidth", [None, 2.0])
def test_labels_by_grid_cell_keep_ties_and_rows_at_h(
    compiled, monkeypatch, offset, scale, bandwidth
):
    # A lattice of rows with centers on it: many rows tie between centers,
    # or lie exactly at the bandwidth, in cells the grid settles and not.
    # Centers 1 and 4 coincide: no cell may be settled for either.
    g = np.arange(-6.0, 7.0, 0.5)
    X = np.stack(np.meshgrid(g, g, g[:9], indexing="ij"), axis=-1).reshape(-1, 3)
    X = np.concatenate([X, BLOBS[:3000]])
    centers = np.array([[0, 0, 0], [2, 0, 0], [0, 4, 2], [-4, -4, 0], [2, 0, 0.0]])
    X, centers = X * scale + offset, centers * scale + offset
    h = None if bandwidth is None else bandwidth * scale
    grid = labels._label_grid(*_ends(X), centers, -1.0 if h is None else h * h, len(X))
    share = labels._settled_share(X, *grid)
    assert 0.1 < share < 1  # cells of both kinds
    assert not np.isin(grid[3], [1, 4]).any()
    # The grid is used whatever share of rows it settles.
    monkeypatch.setattr(labels, "_settled_share", lambda *args: 1.0)
    got = assign_labels(X, centers, h)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    want = np.argmin(d2, axis=1)
    if h is not None:
        want[d2.min(axis=1) > h * h] = -1
    np.testing.assert_array_equal(got, want)
    # numpy's path (smaller blocks) too: ties at 1e-6 split by einsum's order.
    np.testing.assert_array_equal(_numpy(assign_labels, X, centers, h), want)


def _ends(X):
    return X.min(axis=0), X.max(axis=0)


def _centers_like_an_iteration(n):
    """Bin seeds, and seeds crowding onto the modes (as a few shifts later)."""
    seeds = bin_counts(BLOBS, 2.0)[0] * 2.0
    modes = np.array([[0, 0, 0], [6, 1, -4], [9, 9, 9]], float)
    crowd = modes[RNG.integers(0, 3, n)] + RNG.normal(0, 0.3, (n, 3))
    return np.concatenate([seeds, crowd])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_features", [1, 2, 3, 5])
def test_flat_row_sums_count_the_pairwise_rows(compiled, dtype, weighted, n_features):
    """The compiled sums of a block read once against the numpy grid sums."""

    def widened(a):
        return np.ascontiguousarray(
            np.concatenate([a, a[:, :2] * 0.5], axis=1)[:, :n_features]
        )

    X, w = _blocks_of(dtype, weighted)
    X = widened(X)
    centers = widened(_centers_like_an_iteration(200))
    centers = np.concatenate([centers, centers + 0.01])
    h = 1.5
    sums, weights = flat.flat_row_sums(centers, X, h, w)
    want_sums, want_weights = _numpy(
        shift_partial_sums, centers, X, h, "flat", sample_weight=w
    )
    if weighted:
        np.testing.assert_allclose(weights, want_weights, rtol=len(X) * 2**-52)
    else:
        np.testing.assert_array_equal(weights, want_weights)
    # Two float64 sums of the same m terms in other orders: each within
    # (m - 1) u sum|x_i| of the exact one (u = 2^-53), sum|x_i| <= weight * max|x|.
    bound = 2 * len(X) * 2.0**-53 * want_weights[:, None] * np.abs(X).max()
    assert np.all(np.abs(sums - want_sums) <= bound)


def test_flat_row_sums_decide_rows_at_exactly_h(compiled):
    # Integer lattice rows at exactly h = 2 of integer centers: within.
    grid = np.stack(
        np.meshgrid(*[np.arange(-4, 5.0)] * 3, indexing="ij"), axis=-1
    ).reshape(-1, 3)
    X = np.repeat(grid, 3, axis=0)
    centers = grid[np.abs(grid).max(axis=1) <= 2][::3]
    sums, weights = flat.flat_row_sums(centers, X, 2.0, None)
    d2 = ((X[None] - centers[:, None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(weights, (d2 <= 4.0).sum(axis=1))
    np.testing.assert_array_equal(sums, np.einsum("ij,jk->ik", d2 <= 4.0, X))


def test_flat_row_sums_of_far_offset_rows(compiled):
    # Rows 1e6 from the origin: cells and margins scale with the coordinates.
    X = BLOBS + 1e6
    centers = _centers_like_an_iteration(50) + 1e6
    sums, weights = flat.flat_row_sums(centers, X, 1.0, None)
    want_sums, want_weights = _numpy(shift_partial_sums, centers, X, 1.0, "flat")
    np.testing.assert_array_equal(weights, want_weights)
    bound = 2 * len(X) * 2.0**-53 * want_weights[:, None] * np.abs(X).max()
    assert np.all(np.abs(sums - want_sums) <= bound)


def _rows_at_the_edge(n=200):
    """Unit rows whose squared norm, summed feature after feature (as
    scikit-learn's trees sum it), is exactly 1, and by ``einsum`` is not."""
    v = np.random.default_rng(1).normal(size=(20_000, 3))
    v /= np.sqrt((v * v).sum(axis=1))[:, None]
    s = v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2]
    hit = (s == 1.0) & (np.einsum("ij,ij->i", v, v) > 1.0)
    return v[hit][:n]


@pytest.mark.parametrize("way", ["compiled", "numpy"])
def test_flat_sums_count_rows_exactly_at_h_as_scikit_learn(compiled, way):
    from sklearn.neighbors import NearestNeighbors

    edge = _rows_at_the_edge()
    assert len(edge) > 100
    X = np.concatenate([edge, RNG.normal(0, 0.5, size=(3000, 3))])
    centers = np.zeros((1, 3))
    fn = shift_partial_sums
    if way == "numpy":
        _, weights = _numpy(fn, centers, X, 1.0, "flat")
    else:
        _, weights = fn(centers, X, 1.0, "flat")
    within = NearestNeighbors(radius=1.0).fit(X).radius_neighbors(centers)[1][0]
    assert weights[0] == len(within)
    assert set(range(len(edge))) <= set(within.tolist())


_COMPILED_HERE = """
import numba, numpy as np
from dist_meanshift import memory_plan
from dist_meanshift._blocks import _loops, labels
dtype = np.dtype({dtype!r})
memory_plan.compile_loops_here(dtype, labels.COMPILED_MIN_ROWS)
X = np.zeros((4, 3), dtype)
for fn, sample in [
    (_loops.nearest_labels, X),
    (_loops.nearest_labels_by_cell, X),
    (_loops.settled_share, X[::2]),  # a strided sample of the chunk
    (_loops.column_ranges, X),
]:
    if numba.typeof(sample) not in {{sig[0] for sig in fn.signatures}}:
        print("not compiled:", fn.__name__)
# The column index of a chunk kept on disk: built from the rows in their
# own type, read back with them in it.
from dist_meanshift._blocks.kernels import _flat_loops
for fn in (
    _flat_loops.column_bounds, _flat_loops.column_order, _flat_loops.gather_columns
):
    if numba.typeof(X) not in {{sig[0] for sig in fn.signatures}}:
        print("not compiled:", fn.__name__)
coords = {{str(sig[6].dtype) for sig in _flat_loops.column_index_sums.signatures}}
if str(dtype) not in coords:
    print("not compiled: column_index_sums")
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_command_compiles_every_streamed_loop_before_workers_run(dtype):
    # Workers of 512 MiB that compile a loop themselves go over their memory
    # (see memory_plan.compile_loops_here): every loop a labels task of a
    # streamed chunk may take, and its kept column index's, is compiled for
    # its argument types beforehand,
    # in a fresh process (where no other test compiled it).
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _COMPILED_HERE.format(dtype=dtype)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == ""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 3])
def test_column_index_by_counting_sort_is_the_sorted_keys_one(
    monkeypatch, dtype, n_features
):
    # The counting sort is stable, as the sort of packed keys and row numbers:
    # the same order, so the same index, field for field.
    X = RNG.normal(0, 3, size=(20_000, n_features)).astype(dtype)
    X[10_000:] = X[:10_000]  # rows in the same cells, to keep in row order
    w = RNG.uniform(0.5, 2, size=len(X))
    for weights in (None, w):
        counted = flat._column_index(X, weights, 1.0)
        monkeypatch.setattr(flat, "_COUNTING_BINS_PER_ROW", -(1 << 40))
        sorted_ = flat._column_index(X, weights, 1.0)
        monkeypatch.undo()
        for name, value in vars(counted).items():
            np.testing.assert_array_equal(value, vars(sorted_)[name], err_msg=name)


def test_small_tables_merge_compiled_once_the_loops_are_loaded(monkeypatch):
    # Two chunks' tables under COMPILED_MIN_ROWS cells in all, in a process
    # whose binning loaded the compiled loops: merged by them, to the bit as
    # the sort merges them.
    from dist_meanshift._blocks import _loops

    X, w = _blocks_of(np.float64, True)
    parts = [cell_sums(X[:4000], 0.3, w[:4000]), cell_sums(X[4000:], 0.3, w[4000:])]
    merged, merge = [], _loops.merge_tables
    monkeypatch.setattr(
        _loops, "merge_tables", lambda *a: merged.append(1) or merge(*a)
    )
    got = binning.combine_cell_sums(*parts)
    assert merged and sum(len(p[0]) for p in parts) < binning.COMPILED_MIN_ROWS
    want = _numpy(binning.combine_cell_sums, *parts)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
