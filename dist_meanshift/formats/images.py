"""Images in, label images out: pixels become rows, labels come back as an image.

An image input is a PNG or JPEG (read whole: such files are small), a TIFF
(read lazily, tile by tile, through tifffile's zarr store: big slides and
rasters never load whole), or an OME-Zarr image (a chosen resolution level).
Every pixel becomes a row of its channel values, and with ``spatial_scale``
also of its scaled ``y, x`` position, so that clusters are spatially compact
(mean shift segmentation). The labels go back as an image of the input's
height, width and chunks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .._files import (
    MAX_BLOCK_BYTES,
    reading,
    require_extra,
    require_file,
    require_path,
)
from .._outputs import EVERY_CHUNK
from ..errors import InputError
from .base import Format, Option

#: Suffixes read as image files.
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Rows of pixels per chunk when an image becomes rows: chunks of whole rows.
_CHUNK_PIXELS = 1 << 20


def is_image(path):
    """Whether ``path`` names an image: by suffix, or an OME-Zarr image group."""
    name = os.fspath(path).rstrip("/")
    if name.lower().endswith(SUFFIXES):
        return True
    return bool(_multiscales(name))


@dataclass
class ImageInput:
    """An image opened for clustering, read lazily.

    Attributes
    ----------
    path : str
    pixels : dask.array.Array of shape (height, width, channels)
    spatial_scale : float or None
        With it, each row also holds ``y * spatial_scale, x * spatial_scale``.
    """

    path: str
    pixels: object
    spatial_scale: float | None = None
    _array: object = field(default=None, repr=False)

    @property
    def chunks(self):
        """Rows per chunk of :meth:`to_dask` (whole image rows), and features."""
        width = self.pixels.shape[1]
        return max(1, _CHUNK_PIXELS // width) * width, self.shape[1]

    @property
    def image_shape(self):
        return tuple(self.pixels.shape)

    @property
    def shape(self):
        height, width, channels = self.pixels.shape
        return height * width, channels + (2 if self.spatial_scale else 0)

    @property
    def dtype(self):
        return self.pixels.dtype

    def to_dask(self):
        """The pixels as rows (channels, then scaled y and x), in chunks of whole rows."""
        if self._array is not None:
            return self._array
        import dask.array as da

        height, width, channels = self.pixels.shape
        rows = max(1, _CHUNK_PIXELS // width)
        pixels = self.pixels.rechunk((rows, width, channels))
        features = [pixels.astype(np.float32)]
        if self.spatial_scale:
            s = np.float32(self.spatial_scale)
            y, x = da.meshgrid(
                da.arange(height, chunks=rows, dtype=np.float32) * s,
                da.arange(width, chunks=width, dtype=np.float32) * s,
                indexing="ij",
            )
            features += [y[..., None], x[..., None]]
        stacked = da.concatenate(features, axis=2) if len(features) > 1 else features[0]
        self._array = stacked.reshape(height * width, stacked.shape[2])
        return self._array

    @property
    def tiles(self):
        """The input's own chunks (a TIFF's tiles): those of the label image."""
        tiles = getattr(self.pixels, "tiles", None)
        return tiles or tuple(c[0] for c in self.pixels.chunks[:2])

    def label_image(self, labels):
        """The labels (one per pixel) as an image of the input's size and chunks."""
        import dask.array as da

        height, width, _ = self.pixels.shape
        image = da.asarray(labels).reshape(height, width)
        return image.rechunk(self.tiles)


def open_image(path, *, level=0, spatial_scale=None):
    """Open an image file or an OME-Zarr image, lazily where the format allows.

    Parameters
    ----------
    path : str or os.PathLike
    level : int, default=0
        Resolution level of a pyramid (TIFF or OME-Zarr); 0 is full size.
    spatial_scale : float, default=None
        Add each pixel's ``y, x`` times this as features.

    Returns
    -------
    ImageInput
    """
    name = os.fspath(path)
    require_path(name)
    if name.lower().endswith(SUFFIXES):
        require_file(name)
    if spatial_scale is not None and not spatial_scale > 0:
        raise InputError(
            f"input.spatial_scale must be > 0. Got {spatial_scale!r} instead."
        )
    with reading(name, "an image", "Give a PNG, JPEG, TIFF or OME-Zarr image."):
        if name.lower().endswith((".tif", ".tiff")):
            require_extra("images", "TIFF images", "tifffile")
            pixels = _tiff(name, level)
        elif name.lower().endswith(SUFFIXES):
            pixels = _picture(name)
        else:
            pixels = _ome_zarr(name, level)
    tiles = getattr(pixels, "tiles", None)
    if spatial_scale is not None:
        # Positions are float32 features: the last one must stay finite.
        top = float(np.finfo(np.float32).max) / max(1, max(pixels.shape[:2]))
        if not spatial_scale <= top:
            raise InputError(
                f"input.spatial_scale {spatial_scale!r} makes pixel positions of "
                f"this {pixels.shape[0]} x {pixels.shape[1]} image overflow float32: "
                f"give a value in (0, {top:.3g}]."
            )
    if pixels.ndim == 2:
        pixels = pixels[..., None]
        pixels.tiles = tiles
    if pixels.ndim != 3 or pixels.dtype.kind not in "uif":
        raise InputError(
            f"Input {name!r} is an image of shape {pixels.shape} and dtype "
            f"{pixels.dtype}; mean shift needs height x width (x channels) numbers."
        )
    return ImageInput(name, pixels, spatial_scale)


def _tiff(name, level):
    """A TIFF level as a dask array of whole tiles, each task reading its own."""
    import dask.array as da
    import tifffile

    with tifffile.TiffFile(name) as tif:
        series = tif.series[0]
        levels = series.levels
        if not 0 <= level < len(levels):
            raise InputError(
                f"Input {name!r} has resolution levels 0 to {len(levels) - 1}; "
                f"level {level} is not one. Give input.level in that range."
            )
        page = levels[level].keyframe
        shape, dtype = levels[level].shape, levels[level].dtype
        axes = levels[level].axes
        if len(tif.series) > 1 and not tif.is_ome and len(levels) == 1:
            # Several images in one file (pages of different shapes).
            axes = "I" + axes
        planar = len(axes) == 3 and axes in ("SYX", "CYX")
        if not planar and not (
            axes[:2] == "YX" and len(axes) <= 3 and axes[2:] in ("", "S", "C")
        ):
            raise InputError(
                f"Input {name!r} holds a {' x '.join(map(str, shape))} stack (axes "
                f"{axes}): mean shift segments one 2-D image (y, x and channels). "
                "Save the page you want as its own TIFF."
            )
        # Channels stored as separate planes come first: (c, y, x).
        plane = shape[1:] if planar else shape[:2]
        tile = (
            page.tilelength or page.rowsperstrip or plane[0],
            page.tilewidth or plane[1],
        )
        # A planar block holds one channel; a contiguous one, all of them.
        channels = 1 if planar else int(np.prod(shape[2:]))
        _check_blocks(
            name, page, shape, dtype, (tile[0], min(tile[1], plane[1])), channels
        )
    tiles = tuple(min(t, n) for t, n in zip(tile, plane, strict=True))
    reader = _TiffLevel(name, level, shape, dtype)
    reader.row_axis = 1 if planar else 0
    # Tasks read several tiles at once (a task per tile would cost more than
    # its read); the label image keeps the tiles.
    row_bytes = int(np.prod(shape)) // plane[0] * reader.dtype.itemsize
    rows = max(tiles[0], (_READ_BYTES // max(1, row_bytes)) // tiles[0] * tiles[0])
    if planar:
        arr = da.from_array(reader, chunks=(shape[0], rows, shape[2]), asarray=False)
        arr = arr.transpose(1, 2, 0)
    else:
        arr = da.from_array(reader, chunks=(rows, *shape[1:]), asarray=False)
    arr.tiles = tiles
    return arr


#: Bytes a task reads from a TIFF at once.
_READ_BYTES = 16 * 2**20


def _check_blocks(name, page, shape, dtype, tile, channels):
    """Refuse a TIFF whose tiles or strips a task cannot hold, or that lies about its size.

    A tile or strip is decoded whole: one larger than a task's memory fails
    after minutes. Uncompressed blocks must also be as long in the file as
    the pixels they declare.
    """
    block = tile[0] * tile[1] * channels * np.dtype(dtype).itemsize
    if block > MAX_BLOCK_BYTES:
        raise InputError(
            f"Input {name!r} stores its pixels in {'tiles' if page.is_tiled else 'strips'}"
            f" of {block / 2**20:.0f} MiB ({tile[0]} x {tile[1]} pixels), more than a "
            f"task reads at once ({MAX_BLOCK_BYTES >> 20} MiB). Save it tiled, e.g. "
            "tifffile.imwrite(path, data, tile=(256, 256))."
        )
    if page.compression == 1:  # uncompressed: the file must hold every pixel
        declared = int(np.prod(shape)) * np.dtype(dtype).itemsize
        stored = sum(page.databytecounts)
        if stored < declared:
            raise InputError(
                f"Input {name!r} declares {declared} bytes of pixels and stores "
                f"{stored}: it is truncated or damaged. Write it again."
            )


class _TiffLevel:
    """One level of a TIFF as an array-like opened by each read (picklable)."""

    def __init__(self, path, level, shape, dtype):
        from .._files import file_identity

        self.path, self.level, self.identity = path, level, file_identity(path)
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
        self.row_axis = 0

    def __getitem__(self, index):
        import tifffile
        import zarr

        from .._files import require_unchanged

        rows = index[self.row_axis] if isinstance(index, tuple) else index
        subject = f"Rows {rows.start}-{rows.stop - 1} of input file {self.path}"
        require_unchanged(self.path, self.identity, subject)
        with tifffile.imread(self.path, aszarr=True, level=self.level) as store:
            return np.asarray(zarr.open(store, mode="r")[index])


def _picture(name):
    import dask.array as da

    return da.from_array(read_picture(name))


#: Bytes a PNG's or JPEG's pixels may take: it is decoded whole, in memory.
MAX_PICTURE_BYTES = 4 * 2**30
#: Deflate (PNG) stores at most about this many bytes per compressed byte.
_DEFLATE_RATIO = 1100


def read_picture(name):
    """A PNG or JPEG file's pixels: checked against the file and memory first.

    Palette and CMYK pictures become RGB; 1-bit pictures come back as 0/1
    (uint8). The pixels' size is checked before decoding: against memory, and
    for PNG against the most that deflate can expand the file to, so a
    picture that declares more pixels than it can hold is refused in one line
    (PIL's own decompression-bomb warning is replaced by these checks).

    Returns
    -------
    ndarray of shape (height, width) or (height, width, channels)
    """
    import warnings

    from PIL import Image

    require_file(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(name)
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"Input {name!r} has more pixels than a picture is read with ({exc}). "
            "Save it as a tiled TIFF, which is read tile by tile."
        ) from None
    with img:
        width, height = img.size
        bands = 3 if img.mode in ("P", "CMYK") else len(img.getbands())
        bits = {"1": 1, "I": 32, "F": 32}.get(img.mode, 16 if ";16" in img.mode else 8)
        need = width * height * bands * max(1, bits // 8)
        size = os.path.getsize(name)
        png = img.format == "PNG"
        if need > MAX_PICTURE_BYTES or (png and need > _DEFLATE_RATIO * size + 2**20):
            raise InputError(
                f"Input {name!r} declares {width} x {height} pixels "
                f"({need / 2**20:.0f} MiB) in a {size}-byte file: more than "
                f"{'it can hold' if need <= MAX_PICTURE_BYTES else 'a picture is read with'}"
                ". Give an intact picture, or a tiled TIFF for a large one."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if img.mode in ("P", "CMYK"):
                return np.asarray(img.convert("RGB"))
            pixels = np.asarray(img)
    return pixels.astype(np.uint8) if pixels.dtype == bool else pixels


def load_picture(name):
    """A picture file, or a scikit-learn sample picture by name, as RGB floats in [0, 1].

    The pixels an ``[input] image`` job stores as rows; read with
    :func:`read_picture`, the one picture reader.

    Parameters
    ----------
    name : str
        A path to a PNG or JPEG file, or ``china.jpg`` / ``flower.jpg``.

    Returns
    -------
    ndarray of shape (height, width, 3), float32
    """
    if os.path.exists(name):
        with reading(name, "a picture", "Give a PNG or JPEG file."):
            arr = _rgb(read_picture(name))
    else:
        from sklearn.datasets import load_sample_image

        try:
            arr = load_sample_image(name)
        except ValueError as exc:
            raise InputError(
                f"Image {name!r} is neither a file nor a scikit-learn sample image. "
                "Give a PNG/JPEG path, or 'china.jpg' / 'flower.jpg'."
            ) from exc
    top = np.iinfo(arr.dtype).max if arr.dtype.kind in "ui" else 1.0
    return (arr / top).astype(np.float32)


def stored_picture_shape(path):
    """The ``(height, width, channels)`` a picture's pixels stored as zarr rows keep."""
    import zarr

    return tuple(zarr.open_array(path, mode="r").attrs["image_shape"])


def _rgb(pixels):
    """Grey, grey + alpha, RGB or RGBA pixels as RGB (alpha dropped)."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] in (1, 2):
        return np.repeat(pixels[..., :1], 3, axis=2)
    return pixels[..., :3]


def _multiscales(name):
    """The OME-Zarr multiscales metadata of ``name`` (NGFF 0.4 or 0.5), or None."""
    if not os.path.exists(os.path.join(name, "zarr.json")) and not os.path.exists(
        os.path.join(name, ".zattrs")
    ):
        return None
    import zarr

    try:
        attrs = dict(zarr.open_group(name, mode="r").attrs)
    except (OSError, ValueError):
        return None
    return attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")


def _ome_zarr(name, level):
    """The (y, x, c) pixels of one resolution level of an OME-Zarr image."""
    import dask.array as da
    import zarr

    scales = _multiscales(name)
    if not scales:
        raise InputError(
            f"Input {name!r} is not an OME-Zarr image (no multiscales metadata). "
            "Give the image group."
        )
    datasets = scales[0]["datasets"]
    if not 0 <= level < len(datasets):
        raise InputError(
            f"Input {name!r} has resolution levels 0 to {len(datasets) - 1}; level "
            f"{level} is not one. Give input.level in that range."
        )
    axes = [a["name"] if isinstance(a, dict) else a for a in scales[0]["axes"]]
    where = datasets[level].get("path") if isinstance(datasets[level], dict) else None
    root = os.path.realpath(name)
    target = os.path.realpath(os.path.join(name, str(where)))
    if not isinstance(where, str) or not target.startswith(root + os.sep):
        raise InputError(
            f"Input {name!r} names level {level} at {where!r}, outside its own store: "
            "an OME-Zarr image's levels lie inside it. Give an intact image."
        )
    arr = da.from_zarr(zarr.open_array(target, mode="r"))
    extra = [a for a in axes if a not in ("c", "y", "x")]
    if any(arr.shape[axes.index(a)] != 1 for a in extra):
        raise InputError(
            f"Input {name!r} has axes {axes} with more than one {extra} plane; "
            "mean shift segments one 2-D plane. Give a single-plane image."
        )
    arr = arr[tuple(0 if a in extra else slice(None) for a in axes)]
    kept = [a for a in axes if a not in extra]
    order = [kept.index(a) for a in ("y", "x", "c") if a in kept]
    return arr.transpose(order)


def write_label_image(group, image, labels, path=None):
    """Store ``labels`` as an image in ``group``: ``label_image``, an OME-Zarr label.

    ``labels`` (one per pixel, read back from the group's stored ``labels``
    array) are stored chunk by chunk as ``label_image/0``, of the
    input's height, width and chunks, under NGFF ``multiscales`` and
    ``image-label`` metadata (0.5 in zarr v3, see :func:`_label_metadata`), so that viewers (napari) overlay it on the input.
    With ``path``, also as a PNG or TIFF file of the labels plus one (0 for
    points left unlabelled), written aside and renamed into place.
    """
    import dask.array as da

    picture = image.label_image(labels)
    chunks = tuple(c[0] for c in picture.chunks)
    node = group.require_group("label_image")
    node.attrs.update(_label_metadata(image.path, node.metadata.zarr_format))
    level0 = node.create_array(
        "0",
        shape=picture.shape,
        dtype=labels.dtype,
        chunks=chunks,
        overwrite=True,
        config=EVERY_CHUNK,
    )
    da.store(picture, level0, lock=False)
    if path:
        _save_labels(path, da.from_zarr(level0))


def _label_metadata(source, zarr_format):
    """NGFF attributes of a 2-D label image: 0.5 in a zarr v3 group, else 0.4.

    NGFF 0.5 is the version for zarr v3: its metadata sits under ``ome``
    with one ``version``; 0.4 (zarr v2) puts a version in each part.
    """
    multiscale = {
        "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
        "datasets": [
            {
                "path": "0",
                "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}],
            }
        ],
    }
    label = {"source": {"image": source}}
    if zarr_format >= 3:
        return {
            "ome": {"version": "0.5", "multiscales": [multiscale], "image-label": label}
        }
    return {
        "multiscales": [{"version": "0.4", **multiscale}],
        "image-label": {"version": "0.4", **label},
    }


def _save_labels(path, labels):
    """The label image as a 16-bit PNG or TIFF of integers (-1, unlabelled, as 0).

    Always 16-bit, whatever the number of clusters, so that every label file
    reads back alike. It is data, not a picture (values 1..n look black in a
    viewer): the painted picture (``[output] image``) is the one for eyes.
    """
    values = np.asarray(labels.compute()).astype(np.int64) + 1
    if values.max(initial=0) > np.iinfo(np.uint16).max:
        raise InputError(
            f"output.label_image {path!r}: {values.max() - 1} clusters do not fit "
            "16-bit labels. Give a coarser bandwidth, or drop label_image (the "
            "labels are in the result)."
        )
    save_picture(path, values.astype(np.uint16)[..., None])


def segmented(image_shape, dtype, centers, labels):
    """The picture of every pixel painted with its cluster's colour, as uint8.

    The one painter of segmented pictures, for an image input and for a
    picture's pixels stored as rows alike. Channel values are scaled to 0-255
    from the pixels' range (their integer type's, or 0-1 for floats); extra
    features (scaled positions) are left out; labels -1 are painted black.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width, channels)``.
    dtype : numpy dtype
        The pixels' type, which sets their range.
    centers : ndarray of shape (n_clusters, n_features)
    labels : array-like of shape (height * width,), numpy or dask
    """
    import dask.array as da

    height, width, channels = image_shape
    kind = np.dtype(dtype)
    top = np.iinfo(kind).max if kind.kind in "ui" else 1.0
    colours = np.clip(np.asarray(centers)[:, :channels] / top * 255, 0, 255)
    palette = np.vstack(
        [colours.round().astype(np.uint8), np.zeros((1, channels), np.uint8)]
    )
    flat = da.asarray(labels)
    painted = flat.map_blocks(
        lambda lab: palette[lab],
        dtype=np.uint8,
        new_axis=1,
        chunks=(flat.chunks[0], (channels,)),
    )
    return np.asarray(painted.compute()).reshape(height, width, channels)


def save_picture(path, picture):
    """Save a (height, width, channels) picture as PNG, JPEG or TIFF, atomically."""
    from .._outputs import written

    plane = picture[..., 0] if picture.shape[2] == 1 else picture
    with written(path) as tmp:
        if path.lower().endswith((".tif", ".tiff")):
            import tifffile

            tifffile.imwrite(tmp, plane, tile=(256, 256), compression="zlib")
            return
        from PIL import Image

        Image.fromarray(plane).save(tmp)


SPEC = Format(
    name="images",
    what="images",
    kind="image",
    reads="an image (TIFF, PNG, JPEG, OME-Zarr)",
    can_open=lambda path, options: is_image(path),
    open=lambda path, level=0, spatial_scale=None: open_image(
        path, level=level, spatial_scale=spatial_scale
    ),
    options={
        "level": Option(
            (int,), "An image pyramid's resolution level (0: full size).", low=0
        ),
        "spatial_scale": Option(
            (int, float),
            "Add each pixel's y and x times this as features.",
            low=0,
            open_below=True,
        ),
    },
)
