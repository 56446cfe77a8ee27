"""Batch dubbing: many jobs from one list, resumable, on one machine or a Ray cluster.

:func:`run_batch` takes jobs (dicts or :class:`Job` s), runs them on workers that keep their models between
jobs, records each in a state file and returns a :class:`JobResult` per job. :func:`load_jobs` reads a CSV
or JSON Lines job list; :func:`jobs_from_folder` builds the short form (one face x a folder of audio).
"""
from __future__ import annotations

from .jobs import Job, JobListError, jobs_from_folder, load_jobs
from .runner import BatchEvent, BatchInterrupted, JobResult, default_state_path, exit_code, run_batch, summary_table

__all__ = ["BatchEvent", "BatchInterrupted", "Job", "JobListError", "JobResult", "default_state_path", "exit_code",
           "jobs_from_folder", "load_jobs", "run_batch", "summary_table"]
