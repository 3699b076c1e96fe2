"""What a run writes beside its zarr result, by the kind of its input.

A table's labels table, a labelled dataset's label variable, an image's label
image, and the pictures: their paths are checked before the run starts, and
each is written before the result is marked complete (pictures after it,
each written aside and renamed).
"""

from __future__ import annotations

import os

from .errors import InputError

#: What each picture or report may be written as, by its key in [output].
SUFFIXES = {
    "plot": (".png", ".svg", ".pdf"),
    "image": (".png", ".jpg", ".jpeg", ".tif", ".tiff"),
    "report": (".html",),
    "label_image": (".png", ".tif", ".tiff"),
}


class SideOutputs:
    """The outputs a job writes beside its result."""

    def __init__(self, job, path):
        self.job, self.inp, self.out, self.path = job, job.input, job.output, path
        self.format = None  # the input's format (None: zarr or .npy)
        #: The labels written beside the result, by their [output] key.
        self.labels = {}

    def check(self, overwrite, resume):
        """Refuse, before any work, what the run could not write or must not replace.

        One policy for every output (the result, the labels table, the label
        image, the painted picture, the plot, the report, the dataset): never
        an input nor inside one, never another output of the run, never a
        link; an existing one only with ``overwrite`` (folders only if ours);
        its folder writable; its suffix one its writer knows.
        """
        from ._outputs import check_distinct, check_file_output, check_output_path
        from .formats import FORMATS, format_of

        for key, allowed in SUFFIXES.items():
            path = self.out.get(key)
            if path and os.path.splitext(path)[1].lower() not in allowed:
                raise InputError(
                    f"--{key} {path!r} cannot be written: give a path ending in "
                    f"{', '.join(allowed)} ({key} = ... in a job file's [output])."
                )
        inputs, again = self.inputs(), overwrite or resume
        outputs = {"output.path": self.path}
        name = self.inp["path"]
        self.format = format_of(name, self.inp)
        # The labels beside the result, in the input's own format: by default
        # for an input of that format, or where [output] names a path.
        for spec in FORMATS:
            beside = spec.labels
            if beside is None or not (spec is self.format or self.out.get(beside.key)):
                continue
            path = self.out.get(beside.key) or _stem(self.path) + beside.suffix(name)
            check_output_path(
                path,
                again,
                inputs,
                replaceable=(beside.marker,),
                read_attrs=beside.read_attrs,
            )
            self.labels[beside.key] = path
            outputs[f"output.{beside.key}"] = path
        for key in SUFFIXES:
            if self.out.get(key):
                check_file_output(self.out[key], key, again, inputs)
                outputs[f"output.{key}"] = self.out[key]
        check_distinct(outputs)

    def inputs(self):
        """Every path the run reads: the input (each file of a glob) and its image."""
        import glob

        name = self.inp["path"]
        found = [name, *glob.glob(name)] if any(c in name for c in "*?[") else [name]
        image = self.inp.get("image")
        return tuple(found + ([image] if image and os.path.exists(image) else []))

    def check_data(self, data):
        """Refuse, once the input is open and before any work, what it cannot give.

        The plot's features must exist; a picture's format must take the
        input's channels; the labels table's own columns must not replace
        input columns.
        """
        if len(data.shape) != 2:
            return  # refused, in its own words, by the input checks of the fit
        n_features = data.shape[1]
        dims = self.out.get("plot_dims")
        if self.out.get("plot") and dims is not None:
            ok = len(dims) == 2 and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < n_features
                for d in dims
            )
            if not ok:
                raise InputError(
                    f"output.plot_dims {list(dims)!r} must be two feature numbers in "
                    f"0..{n_features - 1} (the input has {n_features} features). "
                    "Give two of them, e.g. [0, 1]."
                )
        image = self.out.get("image")
        channels = getattr(data, "image_shape", (0, 0, 3))[2]
        jpeg = image and image.lower().endswith((".jpg", ".jpeg"))
        if jpeg and channels not in (1, 3):
            raise InputError(
                f"output.image {image!r}: JPEG holds 1 or 3 channels and the input "
                f"has {channels}. Give a .png or .tif path."
            )
        if image and image.lower().endswith(".png") and channels > 4:
            raise InputError(
                f"output.image {image!r}: PNG holds at most 4 channels and the input "
                f"has {channels}. Give a .tif path."
            )
        source = getattr(data, "source", None)
        table = self.labels.get("table")
        if table and self.out.get("table_columns") and source is not None:
            from .formats.tables import ADDED_COLUMNS

            names = [*source.columns, source.index.name]
            clash = [c for c in ADDED_COLUMNS if c in names]
            if clash:
                raise InputError(
                    f"Input {self.inp['path']!r} has column(s) {clash}, which the "
                    "labels table adds with table_columns = true. Rename them in the "
                    "input, or drop table_columns."
                )

    def write(self, group, data, model, sizes):
        """The outputs of table, image and dataset inputs, before the result is complete.

        Each reads the labels back from the result's stored ``labels`` array,
        chunk by chunk: labelling the rows again would cost a pass over the data.
        """
        import dask.array as da

        from .formats import FORMATS
        from .formats.images import ImageInput, write_label_image

        stored = da.from_zarr(group["labels"])
        if isinstance(data, ImageInput):
            write_label_image(group, data, stored, self.out.get("label_image"))
        for spec in FORMATS:
            path = spec.labels and self.labels.get(spec.labels.key)
            if not path:
                continue
            if spec is not self.format:
                raise InputError(
                    f"output.{spec.labels.key} {path!r} needs an input of "
                    f"{spec.what}; drop it, or give one."
                )
            spec.labels.write(path, data, stored, model, sizes, self.out)

    def made(self, data):
        """What was written beside the result, for its summary."""
        image = hasattr(data, "pixels")
        from .formats import FORMATS

        titles = {f.labels.key: f.labels.title for f in FORMATS if f.labels}
        return {
            "beside": {key: (titles[key], p) for key, p in self.labels.items()},
            "label_image": self.out.get("label_image") if image else None,
        }

    def pictures(self, data, model, image_shape, echo):
        """The pictures the job asks for; the paths written."""
        return _pictures(self.job, data, model, image_shape, echo)


def _stem(path):
    stem = path.rstrip("/")
    return stem.removesuffix(".zarr")


def _pictures(job, data, model, image_shape, echo):
    out = job.output
    wanted = [out.get("plot")] + ([out.get("image")] if image_shape else [])
    if not any(wanted):
        return []
    made = []
    try:
        from . import plot

        if out.get("plot"):
            dims = tuple(out.get("plot_dims", (0, 1)))
            plot.plot_result(
                out["plot"],
                data.to_dask() if hasattr(data, "to_dask") else data,
                model._session_labels(),
                model.cluster_centers_,
                model.trace_,
                dims=dims,
            )
            made.append(out["plot"])
        if image_shape and out.get("image"):
            from .formats.images import save_picture, segmented

            picture = segmented(
                image_shape, data.dtype, model.cluster_centers_, model._session_labels()
            )
            save_picture(out["image"], picture)
            made.append(out["image"])
    except ImportError:
        echo("no picture: install the plot extra (pip install 'dist-meanshift[plot]')")
    return made
