"""Numpy bookkeeping of the centers between iterations (no dask).

The driver computes kernel sums for the moving centers; everything it then
decides on the client lives here: where each center goes next, which centers
stop, which coincide and are merged, and scikit-learn's post-processing.

Gaussian mean shift converges linearly: near a mode the shifts shrink by a
factor ``rho`` per iteration (the largest eigenvalue of the mean map's
Jacobian), close to 1 along a ridge. A center that moves less than
``tol * h`` may then still be far from its mode, so a center stops only when
the geometric tail of its shifts, ``s * rho / (1 - rho)``, is within
``tol * h`` as well. The same tail is the acceleration: after two plain
shifts in one direction the center jumps by that tail (at most
``_MAX_JUMP * h``), and the jump is kept only if the density there is not
lower than where it started (the plain step never lowers it); otherwise the
center goes back to its plain step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from . import _blocks

# Longest extrapolated jump, in bandwidths: a jump stays within the reach of
# the kernel around the center, so it cannot leap over a valley unseen.
_MAX_JUMP = 0.5
# Jump only along a steady direction: cosine of successive shifts at least this.
_STEADY = 0.95
# Jump only on slow convergence (fast ones need no help): ratio at least this.
_SLOW = 0.5
# Shifts below this fraction of the bandwidth (or of tol * h) are noise (the
# positions of a float32 fit are rounded to float32, ~6e-8 relative): such a
# center has arrived, whatever the ratio of its last shifts says.
_NOISE = 1e-5
_NOISE_OF_TOL = 1e-2


@dataclass
class Centers:
    """Distinct centers and what each one carries from iteration to iteration.

    Attributes
    ----------
    pos : ndarray of shape (n, n_features), float64
        Where the kernel sums are computed next (moving) or the mode (stopped).
    mult : ndarray of shape (n,)
        Seeds (sum of their weights) each center stands for.
    active : ndarray of shape (n,), bool
        Still moving.
    intensity : ndarray of shape (n,)
        Kernel weight around the center at its last shift.
    prev : ndarray of shape (n, n_features)
        The last plain shift vector, NaN when there is none to compare with.
    fallback : ndarray of shape (n, n_features)
        Gaussian: the plain step to return to if the jump to ``pos`` is refused.
    base : ndarray of shape (n,)
        Gaussian: density where the jump started; NaN when ``pos`` is no jump.
    checked : ndarray of shape (n,), bool
        Gaussian: a stopped center already found to be no saddle point.
    gain : ndarray of shape (n,)
        Gaussian: how many shifts ahead the next jump along a ridge goes.
    """

    pos: np.ndarray
    mult: np.ndarray
    active: np.ndarray
    intensity: np.ndarray
    prev: np.ndarray
    fallback: np.ndarray
    base: np.ndarray
    checked: np.ndarray
    gain: np.ndarray

    @classmethod
    def moving(cls, pos, mult):
        """Centers at ``pos`` (a copy), all moving, with no history yet."""
        pos = np.array(pos, dtype=np.float64)
        n = len(pos)
        return cls(
            pos,
            np.asarray(mult, dtype=np.float64),
            np.ones(n, dtype=bool),
            np.zeros(n),
            np.full(pos.shape, np.nan),
            np.full(pos.shape, np.nan),
            np.full(n, np.nan),
            np.zeros(n, dtype=bool),
            np.ones(n),
        )

    @classmethod
    def from_seeds(cls, seeds, mult=None):
        mult = np.ones(len(seeds)) if mult is None else mult
        return cls.moving(seeds, mult).collapse_identical()

    @classmethod
    def from_arrays(cls, arrays):
        """Centers from a dict of their arrays (a recorded checkpoint)."""
        # Arrays a checkpoint written before they existed lacks start afresh.
        fresh = cls.moving(arrays["pos"], arrays["mult"])
        return cls(
            **{
                f.name: np.array(arrays.get(f.name, getattr(fresh, f.name)))
                for f in fields(cls)
            }
        )

    def copy(self):
        return Centers(*(getattr(self, f.name).copy() for f in fields(self)))

    def __len__(self):
        return len(self.pos)

    def take(self, index):
        return Centers(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concat(a, b):
        return Centers(
            *(
                np.concatenate([getattr(a, f.name), getattr(b, f.name)])
                for f in fields(a)
            )
        )

    def collapse_identical(self):
        """Shift bitwise-equal moving centers once, counting all their seeds."""
        moving = np.flatnonzero(self.active)
        if len(moving) < 2:
            return self
        found = _equal_rows(self.pos[moving])
        if found is None:
            return self
        first, inverse = found
        kept = self.take(moving[first])
        kept.mult = np.bincount(inverse, weights=self.mult[moving])
        kept.intensity = np.zeros(len(first))
        np.maximum.at(kept.intensity, inverse, self.intensity[moving])
        return Centers.concat(self.take(~self.active), kept)

    def merge_stopped(self, radius, dtype):
        """Merge stopped centers within ``radius`` of each other into their mean."""
        stopped = np.flatnonzero(~self.active)
        if len(stopped) < 2:
            return self
        component, merged, mult = _blocks.merge_close_centers(
            self.pos[stopped], self.mult[stopped], radius
        )
        if len(merged) == len(stopped):
            return self
        out = self.take(stopped[np.unique(component, return_index=True)[1]])
        out.pos = merged.astype(dtype).astype(np.float64)
        out.mult = mult
        out.intensity = np.zeros(len(merged))
        np.maximum.at(out.intensity, component, self.intensity[stopped])
        # A merged center is a new point: check it (again) for a saddle.
        out.checked &= np.bincount(component) == 1

        return Centers.concat(out, self.take(self.active))


def step(centers, moving, new, density, *, kernel, stop_thresh, bandwidth, last):
    """Move the centers ``moving`` after their kernel sums, and stop some.

    Parameters
    ----------
    centers : Centers
        Changed in place.
    moving : ndarray of int
        Indices of the centers whose sums were computed.
    new : ndarray of shape (len(moving), n_features)
        The kernel-weighted means at their positions.
    density : ndarray of shape (len(moving),)
        The kernel weights there.
    kernel : Kernel
        Its ``accelerated`` steps, or scikit-learn's plain ones.
    stop_thresh : float
        ``tol * bandwidth``.
    bandwidth : float
    last : bool
        ``max_iter`` is reached: no jump is started (the caller stops them all).

    Returns
    -------
    shift : ndarray of shape (len(moving),)
        How far each center moved.
    """
    old = centers.pos[moving]
    vec = new - old
    shift = np.linalg.norm(vec, axis=1)
    if not kernel.accelerated:
        # scikit-learn's rule, exact for the flat kernel (it stops in finite steps).
        centers.pos[moving] = new
        centers.intensity[moving] = density
        centers.active[moving] = shift > stop_thresh
        return shift
    refused = density < centers.base[moving]
    # A refused jump returns to the plain step it left; its shift history restarts.
    target = np.where(refused[:, None], centers.fallback[moving], new)
    prev = centers.prev[moving]
    prev_norm = np.linalg.norm(prev, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = shift / prev_norm
        cosine = np.einsum("ij,ij->i", vec, prev) / (shift * prev_norm)
        tail = shift * rho / (1 - rho)
    known = ~np.isnan(rho) & ~refused
    noise = max(_NOISE * bandwidth, _NOISE_OF_TOL * stop_thresh)
    arrived = (shift <= noise) | (
        known & (shift <= stop_thresh) & (rho < 1) & (tail <= stop_thresh)
    )
    arrived &= ~refused
    jump = known & ~arrived & (rho >= _SLOW) & (cosine >= _STEADY)
    jump &= not last
    # Converging: jump by the tail. Creeping along a ridge at a steady pace:
    # jump ahead by ``gain`` shifts, doubled after each jump that is kept.
    kept = ~np.isnan(centers.base[moving]) & ~refused
    gain = np.where(
        kept, centers.gain[moving] * 2, np.where(refused, 1.0, centers.gain[moving])
    )
    centers.gain[moving] = gain
    guess = np.where(rho < 1, tail, gain * shift)
    length = np.minimum(np.where(jump, guess, 0.0), _MAX_JUMP * bandwidth)
    with np.errstate(invalid="ignore", divide="ignore"):
        ahead = np.where(jump[:, None], vec * (length / shift)[:, None], 0.0)
    centers.pos[moving] = target + ahead
    centers.fallback[moving] = np.where(jump[:, None], new, np.nan)
    centers.base[moving] = np.where(jump, density, np.nan)
    centers.prev[moving] = np.where((jump | refused)[:, None], np.nan, vec)
    centers.intensity[moving] = np.where(refused, centers.intensity[moving], density)
    centers.active[moving] = ~arrived
    # A refused jump did not move the center on: it is not counted as a shift.
    return np.where(refused, 0.0, shift)


def sklearn_postprocess(pos, intensity, bandwidth):
    """Order by intensity and suppress near duplicates, as scikit-learn does."""
    # Bitwise-equal final centers are one dictionary key in scikit-learn.
    unique, inverse = np.unique(pos, axis=0, return_inverse=True)
    inten = np.zeros(len(unique))
    np.maximum.at(inten, inverse.ravel(), intensity)
    order = _blocks.order_by_intensity(unique, inten)
    ordered, inten = unique[order], inten[order]
    keep = _blocks.suppress_near_duplicates(ordered, bandwidth)
    return ordered[keep], inten[keep]


def _equal_rows(pos):
    """Groups of bitwise-equal rows (``-0.0`` as ``0.0``), or None if none repeat.

    One hash per row, sorted: rows that repeat share a hash, and hashes all
    distinct show in one sort that every row differs (some fifty times
    faster than ``np.unique`` of rows). Rows of one hash are checked equal;
    should two distinct rows share a hash, rows are grouped by a
    lexicographic sort instead.

    Returns
    -------
    first : ndarray of int
        The first row of each group, in increasing order.
    inverse : ndarray of int
        Each row's group.
    """
    pos = np.asarray(pos, dtype=np.float64) + 0.0  # -0.0 as 0.0
    mix = _row_hash(pos)
    order = np.argsort(mix, kind="stable")
    same = mix[order[1:]] == mix[order[:-1]]
    if not same.any():
        return None
    if not (pos[order[1:]][same] == pos[order[:-1]][same]).all():
        order = np.lexsort(pos.T[::-1])  # two distinct rows share a hash
        same = (pos[order[1:]] == pos[order[:-1]]).all(axis=1)
        if not same.any():
            return None
    starts = np.r_[True, ~same]
    # Sorts are stable: a group's first sorted row is its first row.
    first = order[starts]
    rank = np.argsort(first)
    group = np.empty(len(first), dtype=np.int64)
    group[rank] = np.arange(len(first))
    inverse = np.empty(len(pos), dtype=np.int64)
    inverse[order] = group[np.cumsum(starts) - 1]
    return first[rank], inverse


def _row_hash(pos):
    """A 64-bit hash of each row's bits: splitmix64's finaliser of each
    coordinate, combined column by column (integer-valued rows, whose low
    bits are all zero, spread over all 64 bits too)."""
    bits = np.ascontiguousarray(pos).view(np.uint64)
    mix = np.zeros(len(pos), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(pos.shape[1]):
            z = bits[:, j] + np.uint64(0x9E3779B97F4A7C15 * (j + 1) % 2**64)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            mix = (mix * np.uint64(0x9E3779B97F4A7C15)) ^ z ^ (z >> np.uint64(31))
    return mix
