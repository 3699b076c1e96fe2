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


class Beside:
    """The outputs a job writes beside its result."""

    def __init__(self, job, path):
        self.job, self.inp, self.out, self.path = job, job.input, job.output, path
        self.table = self.dataset = None

    def check(self, overwrite, resume):
        """Refuse, before any work, what the run could not write or must not replace.

        One policy for every output (the result, the labels table, the label
        image, the painted picture, the plot, the report, the dataset): never
        an input nor inside one, never another output of the run, never a
        link; an existing one only with ``overwrite`` (folders only if ours);
        its folder writable; its suffix one its writer knows.
        """
        from . import labelled, tables
        from ._outputs import check_distinct, check_file_output, check_output_path

        for key, allowed in SUFFIXES.items():
            path = self.out.get(key)
            if path and os.path.splitext(path)[1].lower() not in allowed:
                raise InputError(
                    f"--{key} {path!r} cannot be written: give a path ending in "
                    f"{', '.join(allowed)} ({key} = ... in a job file's [output])."
                )
        inputs, again = self.inputs(), overwrite or resume
        outputs = {"output.path": self.path}
        if labelled.is_dataset(self.inp["path"], self.inp.get("variables")):
            suffix = (
                ".nc" if self.inp["path"].lower().endswith(labelled.NETCDF) else ".zarr"
            )
            self.dataset = (
                self.out.get("dataset") or _stem(self.path) + f".labels{suffix}"
            )
            check_output_path(
                self.dataset, again, inputs, replaceable=(labelled.FORMAT,)
            )
            outputs["output.dataset"] = self.dataset
        if self.out.get("table") or tables.is_table(self.inp["path"]):
            self.table = self.out.get("table") or _stem(self.path) + ".labels.parquet"
            check_output_path(self.table, again, inputs, replaceable=(tables.FORMAT,))
            outputs["output.table"] = self.table
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
        if self.table and self.out.get("table_columns") and source is not None:
            from .tables import ADDED_COLUMNS

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

        from . import labelled, tables
        from .images import ImageInput, write_label_image

        stored = da.from_zarr(group["labels"])
        if isinstance(data, ImageInput):
            write_label_image(group, data, stored, self.out.get("label_image"))
        if isinstance(data, labelled.DatasetInput):
            labelled.write_labels(self.dataset, data, stored)
        if not self.table:
            return
        if not isinstance(data, tables.TableInput):
            raise InputError(
                f"output.table {self.table!r} needs a table input (Parquet, CSV); "
                "drop it, or give a table."
            )
        tables.write_labels(
            self.table,
            data,
            stored,
            model.cluster_centers_,
            sizes,
            with_columns=self.out.get("table_columns", False),
        )

    def made(self, data):
        """What was written beside the result, for its summary."""
        image = hasattr(data, "pixels")
        return {
            "table": self.table,
            "dataset": self.dataset,
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
            if hasattr(data, "pixels"):  # an image input, in its own units
                from .images import save_picture, segmented

                picture = segmented(
                    data, model.cluster_centers_, model._session_labels()
                )
                save_picture(out["image"], picture)
            else:
                labels = model._session_labels()
                labels = labels.compute() if hasattr(labels, "compute") else labels
                picture = model.cluster_centers_[labels].reshape(image_shape)
                plot.save_image(out["image"], picture)
            made.append(out["image"])
    except ImportError:
        echo("no picture: install the plot extra (pip install 'dist-meanshift[plot]')")
    return made
