"""Job files as the public :class:`Job`: a checked job file that runs itself.

The checking lives in ``_job_file`` (below the runner, which reads job
files); a :class:`Job` adds :meth:`Job.run`, above the runner.
"""

from __future__ import annotations

from ._job_file import (
    KEY_DOCS,
    RANGES,
    SCHEMA,
    JobError,
    JobFile,
    check_memory_limit,
    reference,
)

__all__ = [
    "KEY_DOCS",
    "RANGES",
    "SCHEMA",
    "Job",
    "JobError",
    "check_memory_limit",
    "reference",
]


class Job(JobFile):
    __doc__ = JobFile.__doc__

    def run(self, **kwargs):
        """Run the job: see :func:`dist_meanshift.run_job`."""
        from .runner import run_job

        return run_job(self, **kwargs)
