"""RQ jobs for sync: discovery runs and CSV imports, by id."""

from __future__ import annotations


def run_discovery(job_id: int) -> None:
    from integrations.discovery import run_job

    run_job(job_id)


def run_import(job_id: int) -> None:
    from integrations.csvio import run_import_job

    run_import_job(job_id)


def install() -> None:
    """Event pipeline: imports and discovery runs are durable jobs (swept when lost, resumed)."""
    from cairn.jobs.durable import DurableKind, register
    from integrations import csvio, discovery

    register(DurableKind("import", csvio.stale_import_ids, csvio.requeue_import))
    register(DurableKind("discovery", discovery.stale_run_ids, discovery.requeue_run))
