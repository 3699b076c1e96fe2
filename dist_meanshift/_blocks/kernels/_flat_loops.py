"""The flat kernel's compiled loop: exact sums of centers over a cell index.

Compiled by numba on first use (``cache=True``: later processes load the
machine code from ``__pycache__``); imported only when a flat fit needs it, so
that ``import dist_meanshift`` does not import numba.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _box_distances(c, coords, k, side, margin):
    """Squared distances from ``c`` to the nearest and farthest points of a cell.

    The cell is ``[coords[k] * side, (coords[k] + 1) * side]`` widened by
    ``margin`` on every side (rows snapped to cells by rounded divisions may
    lie a hair outside their cell's exact box).
    """
    near = 0.0
    far = 0.0
    for j in range(c.shape[0]):
        lo = coords[k, j] * side - margin
        hi = lo + side + 2.0 * margin
        below = lo - c[j]
        above = c[j] - hi
        if below > 0.0:
            near += below * below
        elif above > 0.0:
            near += above * above
        a = c[j] - lo
        b = hi - c[j]
        m = max(a, b)
        far += m * m
    return near, far


@numba.njit(cache=True, nogil=True)
def _add_cell(acc, cell_w, cell_s, k):
    """Add cell ``k``'s coordinate sums to ``acc``; its weight, to add to the total."""
    for j in range(acc.shape[0]):
        acc[j] += cell_s[k, j]
    return cell_w[k]


@numba.njit(cache=True, nogil=True)
def flat_index_sums(
    centers,
    group_ptr,
    group_members,
    cand_ptr,
    cand_cells,
    coarse_coords,
    coarse_side,
    coarse_fine,
    coarse_w,
    coarse_s,
    fine_coords,
    fine_side,
    fine_rows,
    fine_w,
    fine_s,
    rows,
    row_w,
    weighted,
    h2,
    band,
    margin,
    sums,
    weights,
):
    """Add the flat-kernel sums of every center over the rows of a cell index.

    For each group of centers (``group_members[group_ptr[g]:group_ptr[g + 1]]``)
    the candidate coarse cells are ``cand_cells[cand_ptr[g]:cand_ptr[g + 1]]``.
    A cell whose farthest point is surely within the bandwidth of a center adds
    its aggregates (weight and weighted coordinate sums); one whose nearest
    point is surely beyond adds nothing; any other coarse cell is looked at
    through its fine cells, and any other fine cell row by row, with the exact
    test ``sum_j (x_j - c_j)^2 <= h^2`` evaluated as scikit-learn's trees do.
    "Surely" keeps ``band`` between a cell's bound and ``h^2``, wider than the
    rounding of any row's distance within it.
    """
    n_features = centers.shape[1]
    inner = h2 - band
    outer = h2 + band
    acc = np.empty(n_features)
    for g in range(group_ptr.shape[0] - 1):
        for m in range(group_ptr[g], group_ptr[g + 1]):
            i = group_members[m]
            c = centers[i]
            for j in range(n_features):
                acc[j] = 0.0
            total = 0.0
            for q in range(cand_ptr[g], cand_ptr[g + 1]):
                k = cand_cells[q]
                near, far = _box_distances(c, coarse_coords, k, coarse_side, margin)
                if near > outer:
                    continue
                if far <= inner:
                    total += _add_cell(acc, coarse_w, coarse_s, k)
                    continue
                for f in range(coarse_fine[k], coarse_fine[k + 1]):
                    near, far = _box_distances(c, fine_coords, f, fine_side, margin)
                    if near > outer:
                        continue
                    if far <= inner:
                        total += _add_cell(acc, fine_w, fine_s, f)
                        continue
                    for r in range(fine_rows[f], fine_rows[f + 1]):
                        d = 0.0
                        for j in range(n_features):
                            t = rows[r, j] - c[j]
                            d += t * t
                        if d <= h2:
                            if weighted:
                                wr = row_w[r]
                                total += wr
                                for j in range(n_features):
                                    acc[j] += wr * rows[r, j]
                            else:
                                total += 1.0
                                for j in range(n_features):
                                    acc[j] += rows[r, j]
            weights[i] += total
            for j in range(n_features):
                sums[i, j] += acc[j]


@numba.njit(cache=True, nogil=True)
def fine_cells(X, fine_side, fine):
    """Every row's fine cell, ``floor(x / fine_side)`` per feature, and the
    lowest and highest coarse cell (``fine`` fine cells wide) per feature."""
    n, n_features = X.shape
    cells = np.empty((n, n_features), dtype=np.int64)
    lo = np.full(n_features, np.iinfo(np.int64).max)
    hi = np.full(n_features, np.iinfo(np.int64).min)
    for i in range(n):
        for j in range(n_features):
            f = np.int64(np.floor(X[i, j] / fine_side))
            cells[i, j] = f
            c = f // fine
            lo[j] = min(lo[j], c)
            hi[j] = max(hi[j], c)
    return cells, lo, hi


@numba.njit(cache=True, nogil=True)
def cell_sort_keys(cells, fine, coarse_keys, lo, strides):
    """One int64 key per row ordering rows by coarse cell, then fine cell.

    The coarse key is mixed-radix over ``lo`` and ``strides`` (or given, in
    ``coarse_keys``, when that grid is too large to number); the fine cell
    within it adds ``sum_j (f_j - fine * c_j) * fine^j``.
    """
    n, n_features = cells.shape
    per_coarse = fine**n_features
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        coarse = 0
        local = 0
        step = 1
        for j in range(n_features):
            c = cells[i, j] // fine
            coarse += (c - lo[j]) * strides[j]
            local += (cells[i, j] - fine * c) * step
            step *= fine
        if coarse_keys.shape[0]:
            coarse = coarse_keys[i]
        keys[i] = coarse * per_coarse + local
    return keys


@numba.njit(cache=True, nogil=True)
def gather_cells(X, weights, cells, keys, order, starts, fine):
    """Rows in cell order with each fine and coarse cell's aggregates.

    Returns the sorted rows (float64) and weights, each fine cell's first
    row, coordinates, weight and coordinate sums, and each coarse cell's
    first fine cell, coordinates, weight and coordinate sums.
    """
    n, n_features = X.shape
    n_fine = starts.shape[0]
    per_coarse = fine**n_features
    rows = np.empty((n, n_features))
    row_w = np.empty(n if weights.shape[0] else 0)
    fine_rows = np.empty(n_fine + 1, dtype=np.int64)
    fine_coords = np.empty((n_fine, n_features), dtype=np.int64)
    fine_w = np.zeros(n_fine)
    fine_s = np.zeros((n_fine, n_features))
    coarse_first = np.empty(n_fine + 1, dtype=np.int64)
    n_coarse = 0
    previous = np.int64(-1)
    for g in range(n_fine):
        start = starts[g]
        stop = starts[g + 1] if g + 1 < n_fine else n
        fine_rows[g] = start
        first = order[start]
        for j in range(n_features):
            fine_coords[g, j] = cells[first, j]
        coarse = keys[first] // per_coarse
        if g == 0 or coarse != previous:
            coarse_first[n_coarse] = g
            n_coarse += 1
            previous = coarse
        for r in range(start, stop):
            i = order[r]
            w = weights[i] if weights.shape[0] else 1.0
            if weights.shape[0]:
                row_w[r] = w
            fine_w[g] += w
            for j in range(n_features):
                x = np.float64(X[i, j])
                rows[r, j] = x
                fine_s[g, j] += w * x
    fine_rows[n_fine] = n
    coarse_fine = coarse_first[: n_coarse + 1].copy()
    coarse_fine[n_coarse] = n_fine
    coarse_coords = np.empty((n_coarse, n_features), dtype=np.int64)
    coarse_w = np.zeros(n_coarse)
    coarse_s = np.zeros((n_coarse, n_features))
    for k in range(n_coarse):
        for j in range(n_features):
            coarse_coords[k, j] = fine_coords[coarse_fine[k], j] // fine
        for g in range(coarse_fine[k], coarse_fine[k + 1]):
            coarse_w[k] += fine_w[g]
            for j in range(n_features):
                coarse_s[k, j] += fine_s[g, j]
    return (
        rows,
        row_w,
        fine_rows,
        fine_coords,
        fine_w,
        fine_s,
        coarse_fine,
        coarse_coords,
        coarse_w,
        coarse_s,
    )


# The column index (up to 3 features). Rows are padded in front to 3
# coordinates with zeros (a zero adds nothing to a distance, bit for bit),
# gathered into columns (cells over the first two coordinates) and sorted
# within a column along the third, in cells of the third coordinate: a ball
# meets a column in one run of rows, most of it summed from prefix sums.


@numba.njit(cache=True, nogil=True)
def column_cells(X, n_axes, col_side, z_side):
    """Every row's column (two coordinates) and cell along the third.

    ``X`` holds the rows padded to 3 coordinates; of the two column axes only
    the last ``n_axes`` are real (the others stay 0). Returns the cells
    and the lowest and highest cell per axis.
    """
    n = X.shape[0]
    cells = np.zeros((n, 3), dtype=np.int64)
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    first = 2 - n_axes
    for i in range(n):
        for a in range(first, 3):
            side = z_side if a == 2 else col_side
            k = np.int64(np.floor(X[i, a] / side))
            cells[i, a] = k
            if i == 0 or k < lo[a]:
                lo[a] = k
            if i == 0 or k > hi[a]:
                hi[a] = k
    return cells, lo, hi


@numba.njit(cache=True, nogil=True)
def column_bounds(X, col_side, z_side):
    """The lowest and highest cell per padded axis of rows ``X`` of up to 3
    features (the padded axes: cell 0), as :func:`column_cells` finds them:
    ``floor`` of a rounded division is monotone, so the cells of the least
    and greatest coordinates are the least and greatest cells."""
    n, n_features = X.shape
    pad = 3 - n_features
    lo = np.zeros(3, dtype=np.int64)
    hi = np.zeros(3, dtype=np.int64)
    if n == 0:
        return lo, hi
    low = np.empty(n_features)
    high = np.empty(n_features)
    for j in range(n_features):
        low[j] = X[0, j]
        high[j] = X[0, j]
    for i in range(n):
        for j in range(n_features):
            x = np.float64(X[i, j])
            low[j] = min(low[j], x)
            high[j] = max(high[j], x)
    for j in range(n_features):
        side = z_side if j + pad == 2 else col_side
        lo[j + pad] = np.int64(np.floor(low[j] / side))
        hi[j + pad] = np.int64(np.floor(high[j] / side))
    return lo, hi


@numba.njit(cache=True, nogil=True)
def column_order(X, lo, span, col_side, z_side):
    """The stable order sorting rows ``X`` (up to 3 features) by column,
    then by cell along the last axis: a counting sort over the ``span``
    cells from ``lo`` (:func:`column_bounds`), the order
    :func:`~..grid.sorted_runs` gives the same keys (ties in row order)."""
    n, n_features = X.shape
    pad = 3 - n_features
    keys = np.empty(n, dtype=np.int64)
    starts = np.zeros(span[0] * span[1] * span[2] + 1, dtype=np.int64)
    for i in range(n):
        key = np.int64(0)
        for a in range(3):
            j = a - pad
            k = np.int64(0)
            if j >= 0:
                side = z_side if a == 2 else col_side
                k = np.int64(np.floor(np.float64(X[i, j]) / side)) - lo[a]
            key = key * span[a] + k
        keys[i] = key
        starts[key + 1] += 1
    for q in range(starts.shape[0] - 1):
        starts[q + 1] += starts[q]
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        q = keys[i]
        order[starts[q]] = i
        starts[q] += 1
    return order


@numba.njit(cache=True, nogil=True)
def _hash(a, b, mask):
    return (
        (a * np.int64(0x9E3779B97F4A7C15)) ^ (b * np.int64(0x632BE59BD9B4E019))
    ) & mask


@numba.njit(cache=True, nogil=True)
def gather_columns(X, weights, order, z_limit, col_side, z_side):
    """The column index of rows ``X`` (up to 3 features, padded to 3 in
    front with zeros as they are read) sorted by ``order``.

    ``order`` sorts the rows by column, then by cell along the third axis.
    Cells along it are merged by twos until each column's dense run of cells
    (first row of every cell, from its lowest to its highest) fits
    ``z_limit`` entries in all. Returns the sorted coordinates (3, n) and
    weights, each column's cells and origin, the merge factor, the cells'
    first rows and the column-local prefix sums of weights and of weighted
    coordinates relative to the column's origin, at every cell boundary,
    and the hash of the columns (two cell coordinates to column number).
    """
    n, n_features = X.shape
    pad = 3 - n_features
    weighted = weights.shape[0] > 0
    coords = np.empty((3, n))
    row_w = np.empty(n if weighted else 0)
    # One gather of each row (random reads, once); its cells are found again
    # from it as column_cells found them (padded coordinates: cell 0), and
    # every loop after reads the sorted copies in order.
    sorted_cells = np.empty((n, 3), dtype=np.int64)
    for r in range(n):
        i = order[r]
        if weighted:
            row_w[r] = weights[i]
        for a in range(3):
            x = np.float64(X[i, a - pad]) if a >= pad else 0.0
            coords[a, r] = x
            side = z_side if a == 2 else col_side
            sorted_cells[r, a] = np.int64(np.floor(x / side))
    # Columns: runs of equal (c0, c1) in sorted order.
    col_first = np.empty(n + 1, dtype=np.int64)
    n_cols = 0
    for r in range(n):
        if (
            r == 0
            or sorted_cells[r, 0] != sorted_cells[r - 1, 0]
            or (sorted_cells[r, 1] != sorted_cells[r - 1, 1])
        ):
            col_first[n_cols] = r
            n_cols += 1
    col_first[n_cols] = n
    col_first = col_first[: n_cols + 1].copy()
    col_c = np.empty((n_cols, 2), dtype=np.int64)
    z_lo = np.empty(n_cols, dtype=np.int64)
    z_hi = np.empty(n_cols, dtype=np.int64)
    for c in range(n_cols):
        r = col_first[c]
        col_c[c, 0] = sorted_cells[r, 0]
        col_c[c, 1] = sorted_cells[r, 1]
        z_lo[c] = sorted_cells[r, 2]
        z_hi[c] = sorted_cells[col_first[c + 1] - 1, 2]
    merge = np.int64(1)
    while True:
        total = 0
        for c in range(n_cols):
            total += z_hi[c] // merge - z_lo[c] // merge + 2
        if total <= z_limit:
            break
        merge *= 2
    z_base = np.empty(n_cols + 1, dtype=np.int64)
    z_base[0] = 0
    for c in range(n_cols):
        z_lo[c] = z_lo[c] // merge
        z_hi[c] = z_hi[c] // merge
        z_base[c + 1] = z_base[c] + z_hi[c] - z_lo[c] + 2
    total = z_base[n_cols]
    z_first = np.empty(total, dtype=np.int64)
    pre_w = np.empty(total)
    pre_s = np.empty((3, total))
    origin = np.empty((n_cols, 3))
    side = z_side * merge
    for c in range(n_cols):
        origin[c, 0] = col_c[c, 0] * col_side
        origin[c, 1] = col_c[c, 1] * col_side
        origin[c, 2] = z_lo[c] * side
        r = col_first[c]
        stop = col_first[c + 1]
        w_run = 0.0
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        for k in range(z_hi[c] - z_lo[c] + 2):
            e = z_base[c] + k
            cell = z_lo[c] + k
            while r < stop and sorted_cells[r, 2] // merge < cell:
                w = row_w[r] if weighted else 1.0
                w_run += w
                s0 += w * (coords[0, r] - origin[c, 0])
                s1 += w * (coords[1, r] - origin[c, 1])
                s2 += w * (coords[2, r] - origin[c, 2])
                r += 1
            z_first[e] = r
            pre_w[e] = w_run
            pre_s[0, e] = s0
            pre_s[1, e] = s1
            pre_s[2, e] = s2
    size = 1
    while size < 2 * n_cols:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)
    mask = np.int64(size - 1)
    for c in range(n_cols):
        slot = _hash(col_c[c, 0], col_c[c, 1], mask)
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = c
    return (
        coords,
        row_w,
        col_c,
        z_lo,
        z_hi,
        z_base,
        origin,
        merge,
        z_first,
        pre_w,
        pre_s,
        table,
    )


@numba.njit(cache=True, nogil=True)
def _row_distance(x0, x1, x2, c0, c1, c2):
    """``sum_j (x_j - c_j)^2`` feature after feature, as scikit-learn's trees.

    Compiled without fast-math flags: inlined into the loop below, its
    operations keep their strict IEEE order.
    """
    t0 = x0 - c0
    t1 = x1 - c1
    t2 = x2 - c2
    return t0 * t0 + t1 * t1 + t2 * t2


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, inline="always")
def _add_run(coords, row_w, a, b, c, h2, acc):
    """Add the rows ``a:b`` within ``h`` of ``c`` to ``acc`` (weight, then
    coordinate sums). Their sums may be reordered (vectorised); each row's
    distance is :func:`_row_distance`'s."""
    x0 = coords[0]
    x1 = coords[1]
    x2 = coords[2]
    c0 = c[0]
    c1 = c[1]
    c2 = c[2]
    w_in = 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    if row_w.shape[0]:
        for r in range(a, b):
            d = _row_distance(x0[r], x1[r], x2[r], c0, c1, c2)
            m = row_w[r] if d <= h2 else 0.0
            w_in += m
            s0 += x0[r] * m
            s1 += x1[r] * m
            s2 += x2[r] * m
    else:
        for r in range(a, b):
            d = _row_distance(x0[r], x1[r], x2[r], c0, c1, c2)
            m = 1.0 if d <= h2 else 0.0
            w_in += m
            s0 += x0[r] * m
            s1 += x1[r] * m
            s2 += x2[r] * m
    acc[0] += w_in
    acc[1] += s0
    acc[2] += s1
    acc[3] += s2


@numba.njit(cache=True, nogil=True)
def _axis_bounds(c, k, side, margin):
    """Squared distances from ``c`` to the nearest and farthest points of
    cell ``k`` (``[k * side, (k + 1) * side]`` widened by ``margin``)."""
    lo = k * side - margin
    hi = lo + side + 2.0 * margin
    u = max(lo - c, c - hi, 0.0)
    m = max(c - lo, hi - c)
    return u * u, m * m


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def column_index_sums(
    centers,
    n_axes,
    col_side,
    z_side,
    col_lo,
    col_hi,
    coords,
    row_w,
    col_c,
    z_lo,
    z_hi,
    z_base,
    origin,
    z_first,
    pre_w,
    pre_s,
    table,
    h2,
    band,
    margin,
    sums,
    weights,
):
    """Add the flat-kernel sums of every center (padded to 3) over a column index.

    For each column the ball of a center can reach, the column's box across
    (its two cell coordinates) bounds every row's distance across; the rows
    of cells along the third axis that lie surely within ``h`` for every
    position across are summed from the prefix sums, those surely beyond are
    skipped, and the rows of the cells between (two runs) are tested one by
    one with ``sum_j (x_j - c_j)^2 <= h^2``. "Surely" keeps ``band`` between
    a bound and ``h^2``, wider than the rounding of any row's distance.
    """
    inner = h2 - band
    outer = h2 + band
    reach = np.sqrt(outer)
    mask = np.int64(table.shape[0] - 1)
    first = 2 - n_axes
    acc = np.zeros(4)
    s = np.zeros(3)
    span = np.int64(2.0 * (reach + margin) / col_side) + 3
    near = np.zeros((2, span))
    far = np.zeros((2, span))
    k0 = np.zeros(2, dtype=np.int64)
    k1 = np.zeros(2, dtype=np.int64)
    for i in range(centers.shape[0]):
        c = centers[i]
        acc[:] = 0.0
        total = 0.0
        s[:] = 0.0
        empty = False
        for a in range(first, 2):
            lo = max(np.int64(np.floor((c[a] - reach - margin) / col_side)), col_lo[a])
            hi = min(np.int64(np.floor((c[a] + reach + margin) / col_side)), col_hi[a])
            empty = empty or hi < lo
            k0[a] = lo
            k1[a] = hi
            for k in range(lo, hi + 1):
                near[a, k - lo], far[a, k - lo] = _axis_bounds(
                    c[a], k, col_side, margin
                )
        if empty:
            continue
        cz = c[2]
        for p in range(k0[0], k1[0] + 1):
            n0 = near[0, p - k0[0]]
            f0 = far[0, p - k0[0]]
            if n0 > outer:
                continue
            for q in range(k0[1], k1[1] + 1):
                n01 = n0 + near[1, q - k0[1]]
                if n01 > outer:
                    continue
                f01 = f0 + far[1, q - k0[1]]
                slot = _hash(p, q, mask)
                col = -1
                while table[slot] >= 0:
                    t = table[slot]
                    if col_c[t, 0] == p and col_c[t, 1] == q:
                        col = t
                        break
                    slot = (slot + 1) & mask
                if col < 0:
                    continue
                ro = np.sqrt(outer - n01)
                zl = max(np.int64(np.floor((cz - ro - margin) / z_side)), z_lo[col])
                zh = min(np.int64(np.floor((cz + ro + margin) / z_side)), z_hi[col])
                if zl > zh:
                    continue
                base = z_base[col] - z_lo[col]
                # Cells [sl, sh] lie surely within: their whole box is.
                sl = zh + 1
                sh = zh
                if f01 < inner:
                    ri = np.sqrt(inner - f01)
                    a = max(np.int64(np.ceil((cz - ri + margin) / z_side)), zl)
                    b = min(np.int64(np.floor((cz + ri - margin) / z_side)) - 1, zh)
                    if a <= b:
                        sl = a
                        sh = b
                if sl <= sh:
                    e0 = base + sl
                    e1 = base + sh + 1
                    w = pre_w[e1] - pre_w[e0]
                    total += w
                    for j in range(3):
                        s[j] += pre_s[j, e1] - pre_s[j, e0] + w * origin[col, j]
                    _add_run(coords, row_w, z_first[base + zl], z_first[e0], c, h2, acc)
                    _add_run(
                        coords, row_w, z_first[e1], z_first[base + zh + 1], c, h2, acc
                    )
                else:
                    _add_run(
                        coords,
                        row_w,
                        z_first[base + zl],
                        z_first[base + zh + 1],
                        c,
                        h2,
                        acc,
                    )
        weights[i] += total + acc[0]
        for j in range(3):
            sums[i, j] += s[j] + acc[j + 1]


@numba.njit(cache=True, nogil=True)
def tree_order_means(
    centers, rows, starts, ends, leaf, lower, upper, h2, means, counts
):
    """Float32 means of the rows within ``h`` of each center, as scikit-learn's.

    ``rows`` are float32, in the order of a k-d tree's index, and node
    ``i`` (children ``2i + 1`` and ``2i + 2``) holds rows
    ``starts[i]:ends[i]`` within the box ``[lower[i], upper[i]]``. A row is
    within when ``sum_j (c_j - x_j)^2 <= h^2`` in float64; the rows within
    are added in index order to a float32 sum, one after the other, and the
    sum divided by their count in float32: ``np.mean`` of them in the order
    scikit-learn's tree query returns them. Nodes are skipped when their box
    is beyond ``h`` and taken whole when it is within: bounds that rounding
    keeps on the same side of every row's own distance.
    """
    d = rows.shape[1]
    stack = np.empty(256, dtype=np.int64)
    acc = np.zeros(d, dtype=np.float32)
    for i in range(centers.shape[0]):
        c = centers[i]
        acc[:] = 0
        k = 0
        stack[0] = 0
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            near = 0.0
            far = 0.0
            for j in range(d):
                gap = max(lower[node, j] - c[j], c[j] - upper[node, j], 0.0)
                near += gap * gap
                span = max(abs(c[j] - lower[node, j]), abs(c[j] - upper[node, j]))
                far += span * span
            if near > h2:
                continue
            if far <= h2:
                for r in range(starts[node], ends[node]):
                    for j in range(d):
                        acc[j] += rows[r, j]
                k += ends[node] - starts[node]
            elif leaf[node]:
                for r in range(starts[node], ends[node]):
                    dist = 0.0
                    for j in range(d):
                        t = c[j] - np.float64(rows[r, j])
                        dist += t * t
                    if dist <= h2:
                        for j in range(d):
                            acc[j] += rows[r, j]
                        k += 1
            else:
                stack[top] = 2 * node + 2
                stack[top + 1] = 2 * node + 1
                top += 2
        counts[i] = k
        if k:
            for j in range(d):
                means[i, j] = acc[j] / np.float32(k)


@numba.njit(cache=True, nogil=True)
def sort_rows_by_cell(X, row_w, origin, inv_side, shape):
    """The rows of a block counted, sorted and summed by the cells of a grid.

    The grid has ``shape`` cells of ``1 / inv_side`` from ``origin`` along
    the first ``len(shape)`` features; rows outside it are left out (no
    center is within reach of them).

    Returns
    -------
    starts : ndarray of shape (n_cells + 1,), int64
        The rows of cell ``q`` are ``rows[starts[q]:starts[q + 1]]``.
    rows : ndarray of shape (n_kept, n_features), the rows' dtype
    kept_w : ndarray of shape (n_kept,) or (0,)
        Their weights, if weighted.
    cell_w : ndarray of shape (n_cells,), float64
        Each cell's weight (number of rows, or sum of their weights).
    cell_s : ndarray of shape (n_cells, n_features), float64
        Each cell's weighted coordinate sums.
    """
    n, f = X.shape
    g = shape.shape[0]
    n_cells = 1
    for a in range(g):
        n_cells *= shape[a]
    cell_of = np.empty(n, np.int32)
    starts = np.zeros(n_cells + 1, np.int64)
    for i in range(n):
        cell = np.int64(0)
        for a in range(g):
            v = (X[i, a] - origin[a]) * inv_side
            if not (v >= 0.0 and v < shape[a]):
                cell = -1
                break
            cell = cell * shape[a] + np.int64(v)
        cell_of[i] = np.int32(cell)
        if cell >= 0:
            starts[cell + 1] += 1
    for q in range(n_cells):
        starts[q + 1] += starts[q]
    weighted = row_w.shape[0] > 0
    rows = np.empty((starts[n_cells], f), X.dtype)
    kept_w = np.empty(starts[n_cells] if weighted else 0)
    cell_w = np.zeros(n_cells)
    cell_s = np.zeros((n_cells, f))
    cursor = starts[:-1].copy()
    for i in range(n):
        q = cell_of[i]
        if q < 0:
            continue
        r = cursor[q]
        cursor[q] += 1
        w = row_w[i] if weighted else 1.0
        if weighted:
            kept_w[r] = w
        cell_w[q] += w
        for j in range(f):
            rows[r, j] = X[i, j]
            cell_s[q, j] += np.float64(X[i, j]) * w
    return starts, rows, kept_w, cell_w, cell_s


@numba.njit(cache=True, nogil=True)
def sorted_cell_sums(centers, h2, slack, origin, side, shape, margin, whole,
                     starts, rows, kept_w, cell_w, cell_s, sums, weights):
    """Add the flat-kernel sums of every center over rows sorted by cell.

    For each center, every cell of :func:`sort_rows_by_cell`'s grid within
    reach: a cell whose box (widened by ``margin``, beyond the rounding of a
    row's cell) lies surely within the bandwidth adds its weight and sums
    without visiting its rows (only with ``whole``: the grid spans every
    feature); one surely beyond adds nothing; the rows of any other are
    tested one by one with scikit-learn's ``sum_j (x_j - c_j)^2 <= h^2``
    (:func:`_row_distance`'s order, in float64), added times 0 or 1 (or
    their weight) without a branch. "Surely" keeps a relative ``slack`` on
    ``h^2`` beyond the rounding of any row's distance.
    """
    k, f = centers.shape
    g = shape.shape[0]
    dims = np.ones(3, np.int64)
    dims[3 - g :] = shape
    first = np.zeros(3, np.int64)
    last = np.zeros(3, np.int64)
    c_pad = np.zeros(3)  # the center from the grid's origin, padded to 3 axes
    weighted = kept_w.shape[0] > 0
    inside2 = h2 * (1.0 - slack)
    beyond2 = h2 * (1.0 + slack)
    h = np.sqrt(h2)
    for c in range(k):
        for a in range(3):
            first[a] = 0
            last[a] = 0
        for a in range(g):
            b = 3 - g + a
            c_pad[b] = centers[c, a] - origin[a]
            lo = (c_pad[b] - h - margin) / side
            hi = (c_pad[b] + h + margin) / side
            first[b] = max(0, np.int64(np.floor(lo)))
            last[b] = min(dims[b] - 1, np.int64(np.floor(hi)))
        acc_w = 0.0
        acc = np.zeros(f)
        for q0 in range(first[0], last[0] + 1):
            for q1 in range(first[1], last[1] + 1):
                for q2 in range(first[2], last[2] + 1):
                    cell = (q0 * dims[1] + q1) * dims[2] + q2
                    a_row = starts[cell]
                    b_row = starts[cell + 1]
                    if a_row == b_row:
                        continue
                    near = 0.0
                    far = 0.0
                    for b in range(3 - g, 3):
                        u, m = _axis_bounds(c_pad[b], (q0, q1, q2)[b], side, margin)
                        near += u
                        far += m
                    if near > beyond2:
                        continue
                    if whole and far <= inside2:
                        acc_w += cell_w[cell]
                        for j in range(f):
                            acc[j] += cell_s[cell, j]
                        continue
                    for r in range(a_row, b_row):
                        d = 0.0
                        for j in range(f):
                            t = rows[r, j] - centers[c, j]
                            d += t * t
                        w = kept_w[r] if weighted else 1.0
                        m = w if d <= h2 else 0.0
                        acc_w += m
                        for j in range(f):
                            acc[j] += rows[r, j] * m
        weights[c] += acc_w
        for j in range(f):
            sums[c, j] += acc[j]
