"""The numpy block functions: the maths of one block."""

from __future__ import annotations

import numpy as np
import pytest
from data import BLOBS, SIX
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dist_meanshift._blocks import (
    add_partials,
    assign_labels,
    bin_counts,
    cell_sums,
    combine_bin_counts,
    merge_close_centers,
    nearest_center,
    order_by_intensity,
    shift_partial_sums,
    suppress_near_duplicates,
)
from dist_meanshift._blocks.dense import dense_sums
from dist_meanshift._blocks.grid import PreparedRows
from dist_meanshift._blocks.kernels import KERNELS
from dist_meanshift._blocks.kernels.flat import (
    flat_indexed_sums,
    flat_prepare,
    flat_shared_sums,
)
from dist_meanshift._validation import NonFiniteValues, require_finite

coords = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(1, 40), st.just(3)), elements=coords),
    cut=st.integers(0, 40),
    kernel=st.sampled_from(["flat", "gaussian"]),
)
def test_partial_sums_over_any_split_add_up_to_the_whole(X, cut, kernel):
    centers = X[: min(5, len(X))] + 0.5
    whole = shift_partial_sums(centers, X, 7.0, kernel)
    parts = add_partials(
        shift_partial_sums(centers, X[:cut], 7.0, kernel),
        shift_partial_sums(centers, X[cut:], 7.0, kernel),
    )
    # Gaussian weights and block sums are float32: a matrix product over other
    # row counts may round them differently, relative to the terms summed
    # (coordinate sums near 0 cancel).
    rtol = 1e-12 if kernel == "flat" else 1e-5
    atol = 1e-9 if kernel == "flat" else 1e-5 * (np.abs(X).max() + 1) * whole[1].max()
    np.testing.assert_allclose(parts[0], whole[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(parts[1], whole[1], rtol=rtol, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(1, 30), st.just(2)), elements=coords),
    centers=arrays(
        np.float64, st.tuples(st.integers(1, 6), st.just(2)), elements=coords
    ),
)
def test_labels_never_point_outside_the_centers(X, centers):
    labels = assign_labels(X, centers)
    assert ((labels >= 0) & (labels < len(centers))).all()
    limited = assign_labels(X, centers, bandwidth=1.0)
    assert ((limited >= -1) & (limited < len(centers))).all()


@settings(max_examples=50, deadline=None)
@given(
    centers=arrays(
        np.float64, st.tuples(st.integers(1, 25), st.just(2)), elements=st.floats(-5, 5)
    ),
    seed=st.integers(0, 2**16),
)
def test_merging_is_order_independent(centers, seed):
    mult = np.arange(1, len(centers) + 1, dtype=float)
    perm = np.random.default_rng(seed).permutation(len(centers))
    _, a, ma = merge_close_centers(centers, mult, 1.0)
    _, b, mb = merge_close_centers(centers[perm], mult[perm], 1.0)
    # Means of the same members in another order differ by rounding only.
    key_a = np.lexsort(np.round(a, 6).T[::-1])
    key_b = np.lexsort(np.round(b, 6).T[::-1])
    np.testing.assert_allclose(a[key_a], b[key_b], atol=1e-9)
    np.testing.assert_allclose(ma[key_a], mb[key_b])
    assert ma.sum() == pytest.approx(mult.sum())


def test_flat_sums_count_points_within_bandwidth_inclusive():
    sums, weights = shift_partial_sums(np.array([[0.0, 0.0]]), SIX, np.sqrt(2), "flat")
    # Within sqrt(2) of the origin: (1, 1) at exactly sqrt(2), and (1, 0).
    assert weights.tolist() == [2.0]
    np.testing.assert_allclose(sums, [[2.0, 1.0]])


def test_gaussian_weights_are_the_rbf_kernel():
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    sums, weights = shift_partial_sums(np.zeros((1, 2)), X, 2.0, "gaussian")
    w = np.exp(-np.array([1.0, 4.0]) / (2 * 2.0**2))
    np.testing.assert_allclose(weights, [w.sum()])
    np.testing.assert_allclose(sums, [w @ X])


def test_nearest_center_ties_go_to_the_lowest_index():
    labels, d2, _ = nearest_center(
        np.array([[0.0, 0.0]]), np.array([[1.0, 0], [-1.0, 0]])
    )
    assert labels.tolist() == [0] and d2.tolist() == [1.0]


def test_bin_counts_combine_across_blocks():
    whole = bin_counts(BLOBS, 1.0)
    parts = combine_bin_counts(
        bin_counts(BLOBS[:100], 1.0), bin_counts(BLOBS[100:], 1.0)
    )
    np.testing.assert_array_equal(parts[0], whole[0])
    np.testing.assert_array_equal(parts[1], whole[1])
    assert whole[1].sum() == len(BLOBS)


def test_order_by_intensity_breaks_ties_by_coordinates_descending():
    centers = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    order = order_by_intensity(centers, np.array([5.0, 5.0, 9.0]))
    assert order.tolist() == [2, 1, 0]


def test_suppression_keeps_the_strongest_of_near_duplicates():
    centers = np.array([[0.0, 0.0], [0.5, 0.0], [1.2, 0.0], [5.0, 0.0]])
    assert suppress_near_duplicates(centers, 1.0).tolist() == [True, False, True, True]


def test_slabs_of_a_large_chunk_give_the_same_sums(monkeypatch):
    import dist_meanshift._blocks as blocks

    X = np.random.default_rng(0).normal(size=(5500, 3)) * 4
    centers = X[:50]
    whole = (
        bin_counts(X, 1.0),
        blocks.cell_sums(X, 0.5),
        shift_partial_sums(centers, X, 1.0, "flat"),
    )
    monkeypatch.setattr(blocks.grid, "SLAB_ROWS", 1000)
    monkeypatch.setattr(blocks.binning, "_TABLE_ROWS", 1000)
    slabs = (
        bin_counts(X, 1.0),
        blocks.cell_sums(X, 0.5),
        shift_partial_sums(centers, X, 1.0, "flat"),
    )
    for a, b in zip(whole, slabs, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12)


@pytest.mark.parametrize("n_centers", [1, 7, 300])
def test_nearest_center_equals_the_brute_force_difference_form(n_centers):
    rng = np.random.default_rng(n_centers)
    X = (rng.normal(size=(3000, 3)) * 10 + 1e3).astype(np.float32)
    centers = X[rng.choice(len(X), n_centers, replace=False)].astype(np.float64)
    labels, d2, _ = nearest_center(X, centers)
    diff = centers[:, None, :] - X[None, :, :].astype(np.float64)
    exact = np.einsum("kij,kij->ki", diff, diff)
    np.testing.assert_array_equal(labels, np.argmin(exact, axis=0))
    np.testing.assert_allclose(d2, exact.min(axis=0), rtol=1e-9, atol=1e-9)


def test_assign_labels_counts_a_row_at_exactly_the_bandwidth_as_inside():
    X = np.array([[3.0, 4.0], [3.0, 4.000001], [0.0, 0.0]])
    labels = assign_labels(X, np.array([[0.0, 0.0]]), bandwidth=5.0)
    assert labels.tolist() == [0, -1, 0]


@pytest.mark.parametrize("kernel,truncate", [("flat", None), ("gaussian", 2.0)])
def test_few_centers_direct_and_many_centers_by_grid_agree(kernel, truncate):

    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 3)) * 5
    centers = X[:40]
    many = shift_partial_sums(centers, X, 1.5, kernel, truncate=truncate)
    # Five centers at a time take the direct path: the same sums.
    few = [
        shift_partial_sums(centers[i : i + 5], X, 1.5, kernel, truncate=truncate)
        for i in range(0, 40, 5)
    ]
    assert len(centers) > KERNELS[kernel].grid_min_centers >= 5
    # Gaussian weights and block sums are float32: equal to its rounding
    # (relative to the sums of absolute values, for coordinate sums near 0).
    rtol = 1e-12 if kernel == "flat" else 1e-5
    atol = 0 if kernel == "flat" else 1e-5 * np.abs(X).max() * many[1].max()
    np.testing.assert_allclose(
        np.concatenate([f[0] for f in few]), many[0], rtol=rtol, atol=atol
    )
    np.testing.assert_allclose(np.concatenate([f[1] for f in few]), many[1], rtol)


def test_require_finite_names_the_count_and_the_first_value():
    X = np.zeros((10, 2))
    assert require_finite(X) is X
    X[4, 1], X[7, 0] = np.nan, -np.inf
    with pytest.raises(
        NonFiniteValues, match=r"2 NaN .* rows 100-109, the first at row 104, column 1"
    ):
        require_finite(X, first_row=100)


def test_assign_labels_boundary_is_exact_with_thousands_of_centers():
    # 5000 centers take 13 mantissa bits for their index in nearest_center.
    centers = np.zeros((5000, 2))
    centers[:, 0] = np.arange(5000) * 100.0
    X = np.array([[4321 * 100.0 + 3.0, 4.0], [4321 * 100.0 + 3.0, 4.0000001]])
    assert assign_labels(X, centers, bandwidth=5.0).tolist() == [4321, -1]


def _indexed(centers, X, h, w):
    return flat_indexed_sums(centers, flat_prepare(X, w, h), h)


@pytest.mark.parametrize("way", [flat_shared_sums, _indexed], ids=["shared", "index"])
@pytest.mark.parametrize("weighted", [False, True])
def test_shared_cells_of_centers_give_the_pairwise_flat_sums(
    weighted, way, monkeypatch
):
    # Both flat sums: cells of close centers sharing rows (tasks on a
    # cluster) and the cell index of the rows (rows in this process).
    import dist_meanshift._blocks as blocks

    monkeypatch.setattr(blocks.kernels.flat, "_SHARE_MIN", 8)

    # 64 centers on a 1/16 lattice fill one sharing cell (side 0.29 at h = 2);
    # data on a half-integer lattice lie at exactly h from many of them, and
    # normal rows fill the shell around the cell.
    rng = np.random.default_rng(3)
    fine = np.arange(4) / 16
    centers = np.stack(np.meshgrid(fine, fine, fine), -1).reshape(-1, 3)
    half = np.arange(-6, 7) / 2
    lattice = np.stack(np.meshgrid(half, half, half), -1).reshape(-1, 3)
    X = np.concatenate([lattice, rng.normal(size=(3000, 3)) * 1.5])
    w = rng.random(len(X)) if weighted else None
    shared = way(centers, X, 2.0, w)
    pairwise = dense_sums(centers, X, 2.0, True, 2.0, w)
    diff = X[None, :, :] - centers[:, None, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    inside = d2 <= 4.0
    assert (d2 == 4.0).sum() >= 6
    expected = (inside * (1.0 if w is None else w)).sum(axis=1)
    # Counts are exact; weight sums equal to rounding.
    np.testing.assert_allclose(shared[1], pairwise[1], rtol=0 if w is None else 1e-13)
    np.testing.assert_allclose(shared[1], expected, rtol=1e-13)
    np.testing.assert_allclose(shared[0], pairwise[0], atol=1e-12 * len(X))
    # And the grid path, which shares dense cells, agrees with the direct one.
    many = np.concatenate([centers, rng.normal(size=(200, 3)) * 3])
    grid = shift_partial_sums(many, X, 2.0, "flat", w)
    direct = dense_sums(many, X, 2.0, True, 2.0, w)
    np.testing.assert_allclose(grid[1], direct[1], rtol=0 if w is None else 1e-13)
    # Sums of thousands of rows cancel: compare them to their scale.
    np.testing.assert_allclose(grid[0], direct[0], atol=1e-12 * len(X))


@settings(max_examples=40, deadline=None)
@given(
    spread=st.sampled_from([0.0, 1e-3, 0.05, 0.2]),
    bandwidth=st.sampled_from([0.5, 1.0, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_sharing_equals_pairwise_for_any_crowd_of_centers(spread, bandwidth, seed):

    # A crowd of centers (tight or loose, some bitwise equal) amid rows at all
    # distances, some on a lattice that puts rows at exactly the bandwidth.
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, 3)) * spread
    centers[::7] = 0.0
    X = np.concatenate([rng.normal(size=(500, 3)) * 2, np.eye(3) * bandwidth])
    shared = flat_shared_sums(centers, X, bandwidth, None)
    pairwise = dense_sums(centers, X, bandwidth, True, bandwidth, None)
    np.testing.assert_array_equal(shared[1], pairwise[1])
    np.testing.assert_allclose(shared[0], pairwise[0], atol=1e-12 * len(X))


def _within(centers, X, h):
    """Rows within ``h`` of each center, as scikit-learn's trees decide:
    ``sum_j (x_j - c_j)^2 <= h^2``, summed feature after feature."""
    d2 = np.zeros((len(centers), len(X)))
    for j in range(X.shape[1]):
        d2 += (X[None, :, j] - centers[:, None, j]) ** 2
    return d2 <= h * h


@settings(max_examples=40, deadline=None)
@given(
    spread=st.sampled_from([0.0, 1e-3, 0.05, 0.2, 3.0]),
    bandwidth=st.sampled_from([1e-3, 0.5, 1.0, 3.0]),
    offset=st.sampled_from([0.0, -7.25, 1e6]),
    n_features=st.sampled_from([1, 2, 3, 5, 16]),
    seed=st.integers(0, 2**16),
)
def test_the_cell_index_equals_pairwise_for_any_crowd_of_centers(
    spread, bandwidth, offset, n_features, seed
):
    # A crowd of centers (tight or loose, some bitwise equal) amid rows at all
    # distances, some at exactly the bandwidth, near the origin or far from
    # it (where a cell's bounds round): the same rows are within the bandwidth.
    rng = np.random.default_rng(seed)
    scale = 4 * bandwidth
    centers = offset + rng.normal(size=(40, n_features)) * spread * bandwidth
    centers[::7] = offset
    X = np.concatenate(
        [
            offset + rng.normal(size=(500, n_features)) * scale,
            offset + np.eye(n_features) * bandwidth,
            centers[:5] + bandwidth * np.eye(n_features)[0],
        ]
    )
    w = rng.random(len(X)) if seed % 2 else None
    indexed = flat_indexed_sums(centers, flat_prepare(X, w, bandwidth), bandwidth)
    inside = _within(centers, X, bandwidth)
    expected = (inside * (1.0 if w is None else w)).sum(axis=1)
    np.testing.assert_allclose(indexed[1], expected, rtol=1e-13)
    if w is None:
        np.testing.assert_array_equal(indexed[1], inside.sum(axis=1))
    np.testing.assert_allclose(
        indexed[0],
        (inside * (1.0 if w is None else w)) @ X,
        atol=1e-12 * len(X) * (np.abs(X).max() + 1),
    )


@pytest.mark.parametrize("dense_cells", [0, 1 << 22], ids=["sorted", "dense"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_tables_equal_a_unique_reference(
    monkeypatch, dense_cells, weighted, dtype
):
    import dist_meanshift._blocks as blocks

    monkeypatch.setattr(blocks.binning, "_DENSE_CELLS", dense_cells)
    rng = np.random.default_rng(7)
    X = (rng.normal(size=(4000, 3)) * 3).astype(dtype)
    w = rng.random(len(X)) * (np.arange(len(X)) % 5 > 0) if weighted else None
    cells, counts, sums = blocks.cell_sums(X, 0.7, w)
    snapped = np.floor(X / dtype(0.7)).astype(np.int64)
    expected, inverse = np.unique(snapped, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    weights = np.ones(len(X)) if w is None else w
    np.testing.assert_array_equal(cells, expected)
    np.testing.assert_allclose(counts, np.bincount(inverse, weights=weights))
    for j in range(3):
        np.testing.assert_allclose(
            sums[:, j], np.bincount(inverse, weights=weights * X[:, j]), rtol=1e-12
        )
    bins, bin_weights = blocks.bin_counts(X, 2.0, w)
    rounded = np.round(X / dtype(2.0)).astype(np.int64)
    expected, inverse = np.unique(rounded, axis=0, return_inverse=True)
    np.testing.assert_array_equal(bins, expected)
    np.testing.assert_allclose(
        bin_weights, np.bincount(inverse.ravel(), weights=weights)
    )


def test_float32_cells_too_far_for_float32_are_divided_in_float64():
    # Cell numbers beyond 2**22 cannot be told apart in float32.
    X = (np.random.default_rng(3).normal(size=(3000, 3)) * 3 + 5e6).astype(np.float32)
    cells, counts, _ = cell_sums(X, 0.3)
    exact = np.floor(X.astype(np.float64) / 0.3).astype(np.int64)
    expected, inverse = np.unique(exact, axis=0, return_inverse=True)
    np.testing.assert_array_equal(cells, expected)
    np.testing.assert_array_equal(counts, np.bincount(inverse.ravel()))


@pytest.mark.parametrize("n_features", [1, 2, 3, 5, 20])
@pytest.mark.parametrize("spread", [0.01, 0.3, 3.0])
def test_merge_components_equal_those_of_all_pairs(n_features, spread):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    rs = np.random.RandomState(n_features)
    points = rs.normal(size=(1500, n_features)) * spread
    points += rs.randint(0, 3, size=(1500, 1))
    ours, merged, _ = merge_close_centers(points, np.ones(len(points)), 0.1)
    pairs = cKDTree(points).query_pairs(0.1, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (1500, 1500))
    n_components, component = connected_components(graph, directed=False)
    assert len(merged) == n_components
    # Same partition: every reference component maps to one merged center.
    assert len(set(zip(ours.tolist(), component.tolist(), strict=True))) == n_components


def test_merging_crowded_centers_keeps_memory_linear():
    # 200,000 centers in 8 tight crowds: all pairs would be 2.5 billion.
    rs = np.random.RandomState(0)
    points = rs.normal(size=(200_000, 3)) * 1e-3
    points += rs.randint(0, 8, size=(200_000, 1)) * 5.0
    _, merged, mult = merge_close_centers(points, np.ones(len(points)), 0.1)
    assert len(merged) == 8 and mult.sum() == len(points)


def test_a_kernel_is_declared_in_its_own_module_and_nowhere_else():
    import re
    from pathlib import Path

    import dist_meanshift._blocks as blocks
    from dist_meanshift._blocks.kernels import KERNELS, get
    from dist_meanshift._params import BY_NAME

    assert set(KERNELS) == set(BY_NAME["kernel"].choices)
    assert next(iter(KERNELS)) == BY_NAME["kernel"].default
    assert all(get(name) is kernel for name, kernel in KERNELS.items())
    with pytest.raises(ValueError, match="Unknown kernel 'cosine': use one of"):
        get("cosine")
    package = Path(blocks.__file__).parents[1]
    rooms = package / "_blocks" / "kernels"
    compared = re.compile(r"""kernel\s*[!=]=|[!=]=\s*["'](flat|gaussian)["']""")
    for path in package.rglob("*.py"):
        if rooms not in path.parents:
            assert not compared.search(path.read_text()), path


@pytest.mark.parametrize("weighted", [False, True])
def test_repeated_rows_merged_in_the_cell_index_give_the_same_sums(weighted):
    # Integer rows repeat (as a picture's colours do): the index merges them
    # into weighted rows, and the sums are those of every row.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 8, size=(20_000, 3)).astype(np.float64)
    X[::3] += 0.5  # some rows exactly at h = 2.5 of the integer centers
    centers = np.concatenate([rng.integers(0, 8, size=(30, 3)), rng.random((30, 3))])
    w = rng.random(len(X)) if weighted else None
    prepared = flat_prepare(X, w, 2.5)
    assert sum(len(s.rows) for s in prepared.slabs) < len(X) // 10
    inside = _within(centers, X, 2.5)
    assert (inside.sum() > 0) and (~inside).sum() > 0
    sums, weights = flat_indexed_sums(centers, prepared, 2.5)
    expected = (inside * (1.0 if w is None else w)).sum(axis=1)
    if w is None:
        np.testing.assert_array_equal(weights, expected)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    np.testing.assert_allclose(
        sums, (inside * (1.0 if w is None else w)) @ X, rtol=1e-12, atol=1e-9
    )


@pytest.mark.parametrize(
    "offset, bandwidth, kind",
    [
        (0.0, 1.0, "ColumnIndex"),  # columns, z cells merged by twos
        (1e12, 1.0, "ColumnIndex"),  # a grid too large to number: sorted by lexsort
        (1e15, 1.0, "CellIndex"),  # z cells cannot be numbered exactly
    ],
)
@pytest.mark.parametrize("n_features", [1, 2, 3])
def test_the_column_index_equals_pairwise_on_sparse_far_spread_rows(
    offset, bandwidth, kind, n_features
):
    # Few rows spread far along the last feature (a column would span more
    # z cells than there are rows), two clusters at +-offset, rows at exactly
    # the bandwidth from the centers: the same rows are within the bandwidth.
    rng = np.random.default_rng(11)
    X = rng.normal(size=(9000, n_features))
    X[::3, -1] *= 1e4
    X[:30:3, -1] = np.linspace(-5e5, 5e5, 10)
    X[: len(X) // 2] += offset
    X[len(X) // 2 :] -= offset
    centers = np.concatenate([X[:40:2], X[-40::3], X[:5] + bandwidth])
    X = np.concatenate([X, centers[-5:] + bandwidth * np.eye(n_features)[-1]])
    prepared = flat_prepare(X, None, bandwidth)
    assert {type(s).__name__ for s in prepared.slabs} == {kind}
    indexed = flat_indexed_sums(centers, prepared, bandwidth)
    inside = _within(centers, X, bandwidth)
    assert inside.sum(axis=1).max() > 100 and (inside.sum(axis=1) == 1).any()
    np.testing.assert_array_equal(indexed[1], inside.sum(axis=1))
    np.testing.assert_allclose(
        indexed[0], inside @ X, rtol=1e-12, atol=1e-12 * (abs(offset) + 1)
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 60),
    n_features=st.integers(1, 4),
    values=st.sampled_from([2, 3, 1000]),
    seed=st.integers(0, 2**16),
)
def test_equal_rows_groups_as_numpy_unique(n, n_features, values, seed):
    from dist_meanshift._centers import _equal_rows

    rng = np.random.default_rng(seed)
    pos = rng.integers(-1, values, size=(n, n_features)) * 0.5
    pos[pos == 0] *= np.where(rng.random((pos == 0).sum()) < 0.5, -1.0, 1.0)  # -0.0
    _, first, inverse = np.unique(pos, axis=0, return_index=True, return_inverse=True)
    found = _equal_rows(pos)
    if len(first) == n:
        assert found is None
        return
    # The same groups, numbered by their first rows in row order.
    ours, groups = found
    np.testing.assert_array_equal(ours, np.sort(first))
    np.testing.assert_array_equal(ours[groups], first[inverse.ravel()])


@settings(max_examples=30, deadline=None)
@given(
    n_features=st.sampled_from([1, 2, 3, 5]),
    bandwidth=st.sampled_from([0.5, 1.0, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_a_flat_shift_raises_the_epanechnikov_density_so_centers_never_cycle(
    n_features, bandwidth, seed
):
    # f(y) = sum_i (h^2 - |x_i - y|^2)_+ and the flat shift y' = mean of the n
    # rows within h of y give f(y') >= f(y) + n |y' - y|^2: a center moving by
    # more than the stop threshold can never come back to a position it held
    # (no cycle to detect). Both ways of summing keep it, up to rounding.
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(3000, n_features)) * 2, 1)
    h = bandwidth
    noise = rng.normal(size=(40, n_features)) * 0.3 * h / np.sqrt(n_features)
    centers = X[rng.choice(len(X), 40)] + noise

    def density(y):
        d2 = _within_d2(y, X)
        return np.clip(h * h - d2, 0, None).sum(axis=1)

    for sums, weights in (
        flat_indexed_sums(centers, flat_prepare(X, None, h), h),
        shift_partial_sums(centers, X, h, "flat", None),
    ):
        met = weights > 0
        assert met.sum() > 30
        new = sums[met] / weights[met, None]
        gain = weights[met] * ((new - centers[met]) ** 2).sum(axis=1)
        rounding = 1e-12 * weights[met] * (h * h + np.abs(X).max() ** 2)
        assert (gain > 0).any()
        assert (density(new) >= density(centers[met]) + gain - rounding).all()


def _within_d2(centers, X):
    d2 = np.zeros((len(centers), len(X)))
    for j in range(X.shape[1]):
        d2 += (X[None, :, j] - centers[:, None, j]) ** 2
    return d2


def test_equal_rows_are_grouped_right_when_distinct_rows_share_a_hash(monkeypatch):
    import dist_meanshift._centers as centers

    # Every row one hash: the rows are grouped by a lexicographic sort.
    monkeypatch.setattr(centers, "_row_hash", lambda pos: np.zeros(len(pos), np.uint64))
    pos = np.array([[1.5, 2.0], [3.0, 1.0], [1.5, 2.0], [7.0, 7.0], [3.0, 1.0]])
    first, inverse = centers._equal_rows(pos)
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(inverse, [0, 1, 0, 2, 1])
    assert centers._equal_rows(pos[:2]) is None


def test_the_row_hash_spreads_integer_rows():
    from dist_meanshift._centers import _row_hash

    # Pixels: integer rows, whose low mantissa bits are all zero.
    grid = np.stack(np.meshgrid(*[np.arange(64.0)] * 3), -1).reshape(-1, 3)
    assert len(np.unique(_row_hash(grid))) == len(grid)


@pytest.mark.parametrize("n_features", [2, 3, 7, 15])
def test_float32_tree_order_sums_are_sklearns_means(n_features):
    # The rows within h of a center, as scikit-learn's NearestNeighbors
    # returns them, np.mean-ed in float32: the same bits, the same counts
    # (rows on a lattice lie at exactly h from some centers).
    from sklearn.neighbors import KDTree, NearestNeighbors

    from dist_meanshift._blocks.kernels.flat import tree_order

    rng = np.random.default_rng(n_features)
    X = np.concatenate(
        [
            rng.normal(size=(3000, n_features)),
            np.round(rng.normal(size=(500, n_features))),
        ]
    ).astype(np.float32)
    h = {2: 1.0, 3: 1.0, 7: 2.0, 15: 3.0}[n_features]
    centers = np.concatenate([X[:40], np.round(X[40:80])]).astype(np.float64)
    tree = KDTree(X.astype(np.float64), leaf_size=30).get_arrays()[1:]
    prepared = PreparedRows([tree_order(X, *tree)], X.shape, ordered=True)
    sums, weights = flat_indexed_sums(centers, prepared, h)
    nn = NearestNeighbors(radius=h).fit(X)
    found = nn.radius_neighbors(centers.astype(np.float32), h, return_distance=False)
    np.testing.assert_array_equal(weights, [len(i) for i in found])
    assert (_within_d2(centers, X.astype(np.float64)) == h * h).any()
    means = np.array([np.mean(X[i], axis=0) for i in found])
    np.testing.assert_array_equal((sums / weights[:, None]).astype(np.float32), means)


def test_float32_sums_in_tree_order_agree_by_numpy_and_compiled(monkeypatch):
    from sklearn.neighbors import KDTree

    from dist_meanshift._blocks.kernels import flat

    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(4000, 3)) * 8).astype(np.float32) / 8
    tree = KDTree(X.astype(np.float64), leaf_size=30).get_arrays()[1:]
    prepared = PreparedRows([flat.tree_order(X, *tree)], X.shape, ordered=True)
    centers = X[:50].astype(np.float64)
    monkeypatch.setattr(flat, "_TREE_NUMPY_PAIRS", 0)
    compiled = flat_indexed_sums(centers, prepared, 0.75)
    monkeypatch.setattr(flat, "_TREE_NUMPY_PAIRS", 1 << 30)
    by_numpy = flat_indexed_sums(centers, prepared, 0.75)
    np.testing.assert_array_equal(compiled[1], by_numpy[1])
    np.testing.assert_array_equal(compiled[0], by_numpy[0])
