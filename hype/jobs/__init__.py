"""Background jobs: metrics, report rendering and image imports, off the request path.

The queue is Huey (`queue.py`): SQLite storage in the data dir by default (no server to run), Redis
when `HYPE_REDIS_URL` is set. The queue carries only a job's id; the job's row (`records.py`, table
`jobs`) carries what was asked, its progress and how it ended, which is what the dashboard and
`hype jobs` show. `runner.py` runs one job; `kinds.py` holds what each kind of job does, written so
that no database transaction is open while it computes.
"""

from hype.jobs.records import JobError, active_job, job_view, jobs_of_study, start_job
from hype.jobs.runner import run_job
from hype.jobs.queue import submit

__all__ = ["JobError", "active_job", "job_view", "jobs_of_study", "run_job", "start_job", "submit"]
