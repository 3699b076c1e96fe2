"""MkDocs hook: the job-file reference is written from the parameter table at build."""

from __future__ import annotations

from pathlib import Path


def on_pre_build(config, **kwargs):
    from dist_meanshift.jobs import reference

    page = Path(config["docs_dir"]) / "job-reference.md"
    text = reference()
    if not page.exists() or page.read_text() != text:
        page.write_text(text)
