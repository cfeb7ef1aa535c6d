"""Fine-tuning jobs through the gateway (``/v1/fine_tuning/jobs``, openai-shaped answers, the virtual token)."""

from __future__ import annotations

from typing import Any

from ailink.resources._base import AsyncResource, Call, SyncResource, as_dict, async_method, body, seg, sync_method

__all__ = ["AsyncFineTuningResource", "FineTuningResource"]

_JOBS = "/v1/fine_tuning/jobs"


def _create_job(
    *,
    model: str,
    training_file: str,
    validation_file: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    suffix: str | None = None,
    seed: int | None = None,
) -> Call[dict[str, Any]]:
    """Start a fine-tuning job on an uploaded training file."""
    payload = body(model=model, training_file=training_file, validation_file=validation_file,
                   hyperparameters=hyperparameters, suffix=suffix, seed=seed)
    return Call("POST", _JOBS, as_dict, json=payload, admin=False)


def _list_jobs(*, after: str | None = None, limit: int = 20) -> Call[dict[str, Any]]:
    """A page of jobs."""
    return Call("GET", _JOBS, as_dict, params=body(after=after, limit=limit), admin=False)


def _get_job(fine_tuning_job_id: str) -> Call[dict[str, Any]]:
    """One job."""
    return Call("GET", f"{_JOBS}/{seg(fine_tuning_job_id)}", as_dict, admin=False)


def _cancel_job(fine_tuning_job_id: str) -> Call[dict[str, Any]]:
    """Cancel a job."""
    return Call("POST", f"{_JOBS}/{seg(fine_tuning_job_id)}/cancel", as_dict, json={}, admin=False)


def _list_events(fine_tuning_job_id: str, *, after: str | None = None, limit: int = 20) -> Call[dict[str, Any]]:
    """A page of a job's events."""
    return Call("GET", f"{_JOBS}/{seg(fine_tuning_job_id)}/events", as_dict, params=body(after=after, limit=limit),
                admin=False)


def _list_checkpoints(
    fine_tuning_job_id: str, *, after: str | None = None, limit: int = 10
) -> Call[dict[str, Any]]:
    """A page of a job's checkpoints."""
    return Call("GET", f"{_JOBS}/{seg(fine_tuning_job_id)}/checkpoints", as_dict,
                params=body(after=after, limit=limit), admin=False)


class FineTuningResource(SyncResource):
    """``client.fine_tuning``."""

    create_job = sync_method(_create_job)
    list_jobs = sync_method(_list_jobs)
    get_job = sync_method(_get_job)
    cancel_job = sync_method(_cancel_job)
    list_events = sync_method(_list_events)
    list_checkpoints = sync_method(_list_checkpoints)


class AsyncFineTuningResource(AsyncResource):
    """``client.fine_tuning`` of an :class:`~ailink.AsyncClient`."""

    create_job = async_method(_create_job)
    list_jobs = async_method(_list_jobs)
    get_job = async_method(_get_job)
    cancel_job = async_method(_cancel_job)
    list_events = async_method(_list_events)
    list_checkpoints = async_method(_list_checkpoints)
