"""Files, batches and fine-tuning jobs of the mock OpenAI upstream (``http://llm.mock``), in memory.

OpenAI shapes, enough for the ``openai`` SDK's ``files``, ``batches`` and ``fine_tuning.jobs``:

* ``POST /v1/files`` (multipart: ``file``, ``purpose``) → file object; ``GET /v1/files[?purpose&limit&
  after&order]``; ``GET``/``DELETE /v1/files/{id}``; ``GET /v1/files/{id}/content``.
* ``POST /v1/batches`` ``{input_file_id, endpoint, completion_window: "24h", metadata?}``;
  ``GET /v1/batches[?after&limit]``; ``GET /v1/batches/{id}``; ``POST /v1/batches/{id}/cancel``.
  The input file (purpose ``batch``) is checked line by line at creation: a bad line fails the batch
  (``status: "failed"``, ``errors.data[]`` with the line number). Supported endpoints:
  ``/v1/chat/completions`` and ``/v1/embeddings``.
* ``POST /v1/fine_tuning/jobs`` ``{model, training_file, validation_file?, hyperparameters?, suffix?,
  seed?}``; ``GET /v1/fine_tuning/jobs[?after&limit]``; ``GET /v1/fine_tuning/jobs/{id}``;
  ``POST .../cancel``; ``GET .../events``; ``GET .../checkpoints``. Training files (purpose
  ``fine-tune``) must be JSONL with a ``messages`` list per line (400 naming the line otherwise).

Deterministic progress: every retrieve (``GET`` of one batch or job) advances it one step —
batches ``validating → in_progress → finalizing → completed``, jobs ``validating_files → queued →
running → succeeded``; a cancelled batch goes ``cancelling → cancelled`` on the next retrieve, a job is
``cancelled`` at once. A completed batch has run every line through this mock (chat answers are the
same as ``/v1/chat/completions`` gives, scripted answers included) into an output file
(``batch_output``); a succeeded job has a ``fine_tuned_model``, events and one checkpoint per epoch.
The routes also answer without the ``/v1`` prefix.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from ._mock_llm import LLMMock

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
BATCH_STEPS = {"validating": "in_progress", "in_progress": "finalizing", "finalizing": "completed",
               "cancelling": "cancelled"}
JOB_STEPS = {"validating_files": "queued", "queued": "running", "running": "succeeded"}
TERMINAL_JOB = ("succeeded", "failed", "cancelled")
_SUFFIX = re.compile(r"^[a-z0-9-]{1,64}$")


def openai_error(status: int, message: str, *, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": param,
                                   "code": code}}, status_code=status)


class MockError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.response = openai_error(status, message, code=code, param=param)


def _page(items: list[dict[str, Any]], request: Request, default_limit: int = 20) -> dict[str, Any]:
    """An OpenAI cursor page (``after`` = the last id seen) of ``items`` (already newest first)."""
    try:
        limit = int(request.query_params.get("limit", default_limit))
    except ValueError:
        raise MockError(400, "limit must be an integer", param="limit") from None
    if not 1 <= limit <= 10_000:
        raise MockError(400, "limit must be between 1 and 10000", param="limit")
    after = request.query_params.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise MockError(400, f"unknown cursor: {after}", param="after")
        items = items[ids.index(after) + 1:]
    data = items[:limit]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": len(items) > limit}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise MockError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise MockError(400, "The request body must be a JSON object.")
    return body


def _jsonl(content: bytes) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) of every non-empty line; raises ``ValueError`` naming a bad line."""
    out: list[tuple[int, Any]] = []
    for number, line in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if line.strip():
            try:
                out.append((number, json.loads(line)))
            except ValueError:
                raise ValueError(f"line {number} is not valid JSON") from None
    if not out:
        raise ValueError("the file has no JSONL lines")
    return out


class OpenAIJobsMock:
    """State and routes of the files, batches and fine-tuning mocks (one OpenAI organisation)."""

    def __init__(self, llm: LLMMock) -> None:
        self._llm = llm
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: dict[str, list[dict[str, Any]]] = {}
        self._batch_tokens: dict[str, str | None] = {}

    def reset(self) -> None:
        for table in (self.files, self.contents, self.batches, self.jobs, self.events, self.checkpoints,
                      self._batch_tokens):
            table.clear()

    def routes(self, prefix: str) -> list[Route]:
        def handle(fn: Any) -> Any:
            async def endpoint(request: Request) -> Response:
                try:
                    return await fn(request)  # type: ignore[no-any-return]
                except MockError as exc:
                    return exc.response

            return endpoint

        table = [
            ("/files", self.upload_file, ["POST"]), ("/files", self.list_files, ["GET"]),
            ("/files/{fid}", self.get_file, ["GET"]), ("/files/{fid}", self.delete_file, ["DELETE"]),
            ("/files/{fid}/content", self.file_content, ["GET"]),
            ("/batches", self.create_batch, ["POST"]), ("/batches", self.list_batches, ["GET"]),
            ("/batches/{bid}", self.get_batch, ["GET"]), ("/batches/{bid}/cancel", self.cancel_batch, ["POST"]),
            ("/fine_tuning/jobs", self.create_job, ["POST"]), ("/fine_tuning/jobs", self.list_jobs, ["GET"]),
            ("/fine_tuning/jobs/{jid}", self.get_job, ["GET"]),
            ("/fine_tuning/jobs/{jid}/cancel", self.cancel_job, ["POST"]),
            ("/fine_tuning/jobs/{jid}/events", self.list_events, ["GET"]),
            ("/fine_tuning/jobs/{jid}/checkpoints", self.list_checkpoints, ["GET"]),
        ]
        return [Route(prefix + path, handle(fn), methods=methods) for path, fn, methods in table]

    # ------------------------------------------------------------------ files
    def add_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = "file-" + secrets.token_hex(12)
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                               "filename": filename, "purpose": purpose, "status": "processed",
                               "expires_at": None, "status_details": None}
        self.contents[file_id] = content
        return self.files[file_id]

    def _file(self, file_id: str, param: str = "file_id") -> dict[str, Any]:
        if file_id not in self.files:
            raise MockError(404, f"No such File object: {file_id}", param=param, code="not_found")
        return self.files[file_id]

    async def upload_file(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise MockError(415, "Files must be uploaded as multipart/form-data")
        try:
            form = await request.form()
        except HTTPException as exc:
            raise MockError(400, f"Invalid multipart body: {exc.detail}") from None
        try:
            upload, purpose = form.get("file"), form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise MockError(400, "Missing required parameter: 'file'.", param="file")
            if purpose not in FILE_PURPOSES:
                raise MockError(400, f"'purpose' must be one of {', '.join(FILE_PURPOSES)}.", param="purpose")
            content = await upload.read()
            filename = upload.filename or "upload"
        finally:
            await form.close()
        if not content:
            raise MockError(400, "The file is empty.", param="file")
        return JSONResponse(self.add_file(filename, str(purpose), content))

    async def list_files(self, request: Request) -> Response:
        purpose = request.query_params.get("purpose")
        items = [f for f in self.files.values() if purpose is None or f["purpose"] == purpose]
        items.sort(key=lambda f: (f["created_at"], f["id"]), reverse=request.query_params.get("order") != "asc")
        return JSONResponse(_page(items, request, default_limit=10_000))

    async def get_file(self, request: Request) -> Response:
        return JSONResponse(self._file(request.path_params["fid"]))

    async def delete_file(self, request: Request) -> Response:
        file_id = self._file(request.path_params["fid"])["id"]
        del self.files[file_id], self.contents[file_id]
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def file_content(self, request: Request) -> Response:
        file_id = self._file(request.path_params["fid"])["id"]
        return Response(self.contents[file_id], media_type="application/octet-stream")

    # ------------------------------------------------------------------ batches
    def _batch(self, batch_id: str) -> dict[str, Any]:
        if batch_id not in self.batches:
            raise MockError(404, f"No batch found with id '{batch_id}'.", code="not_found")
        return self.batches[batch_id]

    async def create_batch(self, request: Request) -> Response:
        body = await _json(request)
        endpoint = body.get("endpoint")
        if endpoint not in BATCH_ENDPOINTS:
            raise MockError(400, f"'endpoint' must be one of {', '.join(BATCH_ENDPOINTS)}.", param="endpoint")
        if body.get("completion_window") != "24h":
            raise MockError(400, "'completion_window' must be '24h'.", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict)
                                     or not all(isinstance(v, str) for v in metadata.values())):
            raise MockError(400, "'metadata' must be an object of strings.", param="metadata")
        input_file = self._file(str(body.get("input_file_id")), "input_file_id")
        now = int(time.time())
        batch_id = "batch_" + secrets.token_hex(12)
        batch: dict[str, Any] = {
            "id": batch_id, "object": "batch", "endpoint": endpoint, "errors": None,
            "input_file_id": input_file["id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 24 * 3600, "finalizing_at": None, "completed_at": None, "failed_at": None,
            "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": metadata,
        }
        errors = self._batch_input_errors(input_file, endpoint)
        if errors:
            batch.update(status="failed", failed_at=now, errors={"object": "list", "data": errors})
        else:
            batch["request_counts"]["total"] = len(_jsonl(self.contents[input_file["id"]]))
        self.batches[batch_id] = batch
        self._batch_tokens[batch_id] = request.headers.get(self._llm.token_header)
        return JSONResponse(batch)

    def _batch_input_errors(self, input_file: dict[str, Any], endpoint: str) -> list[dict[str, Any]]:
        if input_file["purpose"] != "batch":
            return [{"code": "invalid_file", "message": "the input file's purpose must be 'batch'", "param": None,
                     "line": None}]
        try:
            lines = _jsonl(self.contents[input_file["id"]])
        except ValueError as exc:
            return [{"code": "invalid_json_line", "message": str(exc), "param": None, "line": None}]
        errors = []
        custom_ids: set[str] = set()
        for number, line in lines:
            problem = None
            if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                problem = ("missing_required_parameter", "each line needs a string 'custom_id'")
            elif line["custom_id"] in custom_ids:
                problem = ("duplicate_custom_id", f"custom_id '{line['custom_id']}' is used twice")
            elif line.get("method") != "POST" or line.get("url") != endpoint:
                problem = ("invalid_url", f"each line needs method 'POST' and url '{endpoint}'")
            elif not isinstance(line.get("body"), dict):
                problem = ("invalid_request", "each line needs a JSON object 'body'")
            if problem:
                errors.append({"code": problem[0], "message": problem[1], "param": None, "line": number})
            else:
                custom_ids.add(line["custom_id"])
        return errors

    async def _run_batch(self, batch: dict[str, Any]) -> None:
        token_ref = self._batch_tokens.get(batch["id"])
        headers = {self._llm.token_header: token_ref} if token_ref else {}
        outputs: list[str] = []
        failures: list[str] = []
        transport = httpx.ASGITransport(app=self._llm.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://llm.mock") as client:
            for _number, line in _jsonl(self.contents[batch["input_file_id"]]):
                resp = await client.post(line["url"], json=line["body"], headers=headers)
                result = {"id": "batch_req_" + secrets.token_hex(12), "custom_id": line["custom_id"],
                          "response": {"status_code": resp.status_code, "request_id": "req_" + secrets.token_hex(16),
                                       "body": resp.json()}, "error": None}
                (outputs if resp.status_code < 400 else failures).append(json.dumps(result))
        batch["request_counts"].update(completed=len(outputs), failed=len(failures))
        if outputs:
            batch["output_file_id"] = self.add_file(f"{batch['id']}_output.jsonl", "batch_output",
                                                    ("\n".join(outputs) + "\n").encode())["id"]
        if failures:
            batch["error_file_id"] = self.add_file(f"{batch['id']}_error.jsonl", "batch_output",
                                                   ("\n".join(failures) + "\n").encode())["id"]

    async def get_batch(self, request: Request) -> Response:
        batch = self._batch(request.path_params["bid"])
        step = BATCH_STEPS.get(batch["status"])
        if step is not None:
            now = int(time.time())
            if step == "completed":
                await self._run_batch(batch)
            batch["status"] = step
            batch[f"{step}_at"] = now
        return JSONResponse(batch)

    async def list_batches(self, request: Request) -> Response:
        items = sorted(self.batches.values(), key=lambda b: (b["created_at"], b["id"]), reverse=True)
        return JSONResponse(_page(items, request))

    async def cancel_batch(self, request: Request) -> Response:
        batch = self._batch(request.path_params["bid"])
        if batch["status"] not in ("validating", "in_progress", "finalizing"):
            raise MockError(400, f"Cannot cancel a batch with status '{batch['status']}'.")
        batch.update(status="cancelling", cancelling_at=int(time.time()))
        return JSONResponse(batch)

    # ------------------------------------------------------------------ fine-tuning
    def _job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise MockError(404, f"Could not find fine-tune job: {job_id}", code="not_found")
        return self.jobs[job_id]

    def _event(self, job_id: str, message: str, **data: Any) -> None:
        self.events[job_id].append({"object": "fine_tuning.job.event", "id": "ftevent-" + secrets.token_hex(12),
                                    "created_at": int(time.time()), "level": "info", "message": message,
                                    "data": data, "type": "message"})

    def _training_file(self, file_id: Any, param: str) -> dict[str, Any]:
        training = self._file(str(file_id), param)
        if training["purpose"] != "fine-tune":
            raise MockError(400, f"File {training['id']} must have purpose 'fine-tune'.", param=param)
        try:
            lines = _jsonl(self.contents[training["id"]])
        except ValueError as exc:
            raise MockError(400, f"Invalid file {training['id']}: {exc}", param=param) from None
        for number, line in lines:
            if not isinstance(line, dict) or not isinstance(line.get("messages"), list) or not line["messages"]:
                raise MockError(400, f"Invalid file {training['id']}: line {number} needs a 'messages' list",
                                param=param)
        return training

    async def create_job(self, request: Request) -> Response:
        body = await _json(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise MockError(400, "Missing required parameter: 'model'.", param="model")
        training = self._training_file(body.get("training_file"), "training_file")
        validation = body.get("validation_file")
        if validation is not None:
            validation = self._training_file(validation, "validation_file")["id"]
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or not _SUFFIX.match(suffix)):
            raise MockError(400, "'suffix' must be 1-64 characters of a-z, 0-9 and '-'.", param="suffix")
        given = body.get("hyperparameters") or {}
        if not isinstance(given, dict):
            raise MockError(400, "'hyperparameters' must be an object.", param="hyperparameters")
        hyper = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto", **given}
        for key in ("n_epochs", "batch_size"):
            if hyper[key] != "auto" and (not isinstance(hyper[key], int) or isinstance(hyper[key], bool)
                                         or not 1 <= hyper[key] <= 256):
                raise MockError(400, f"'{key}' must be 'auto' or an integer between 1 and 256.", param=key)
        rate = hyper["learning_rate_multiplier"]
        if rate != "auto" and (not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0):
            raise MockError(400, "'learning_rate_multiplier' must be 'auto' or a positive number.",
                            param="learning_rate_multiplier")
        job_id = "ftjob-" + secrets.token_hex(12)
        seed = body.get("seed")
        if seed is None:
            seed = int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % 2**31
        elif not isinstance(seed, int) or isinstance(seed, bool):
            raise MockError(400, "'seed' must be an integer.", param="seed")
        job: dict[str, Any] = {
            "object": "fine_tuning.job", "id": job_id, "model": model, "created_at": int(time.time()),
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-ailink-emulator",
            "result_files": [], "status": "validating_files", "validation_file": validation,
            "training_file": training["id"], "hyperparameters": hyper, "trained_tokens": None, "error": None,
            "user_provided_suffix": suffix, "seed": seed, "estimated_finish": None, "integrations": [],
            "metadata": body.get("metadata"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        }
        self.jobs[job_id] = job
        self.events[job_id] = []
        self.checkpoints[job_id] = []
        self._event(job_id, f"Created fine-tuning job: {job_id}")
        return JSONResponse(job)

    def _finish_job(self, job: dict[str, Any]) -> None:
        lines = _jsonl(self.contents[job["training_file"]])
        tokens = sum(len(str(m.get("content", "")).split()) for _n, line in lines for m in line["messages"]
                     if isinstance(m, dict))
        epochs = job["hyperparameters"]["n_epochs"]
        epochs = 3 if epochs == "auto" else epochs
        name = f"ft:{job['model']}:ailink-emulator:{job['user_provided_suffix'] or 'custom'}:{job['id'][-8:]}"
        for epoch in range(1, epochs + 1):
            step = epoch * len(lines)
            self.checkpoints[job["id"]].insert(0, {
                "object": "fine_tuning.job.checkpoint", "id": "ftckpt-" + secrets.token_hex(12),
                "created_at": int(time.time()), "fine_tuning_job_id": job["id"], "step_number": step,
                "fine_tuned_model_checkpoint": name if epoch == epochs else f"{name}:ckpt-step-{step}",
                "metrics": {"step": step, "train_loss": round(1.0 / (epoch + 1), 4),
                            "train_mean_token_accuracy": round(1 - 1.0 / (epoch + 2), 4)},
            })
        result = self.add_file(f"{job['id']}_results.csv", "fine-tune-results",
                               b"step,train_loss\n" + "".join(f"{c['step_number']},{c['metrics']['train_loss']}\n"
                                                              for c in reversed(self.checkpoints[job["id"]])).encode())
        job.update(fine_tuned_model=name, finished_at=int(time.time()), trained_tokens=tokens * epochs,
                   result_files=[result["id"]])
        self._event(job["id"], "The job has successfully completed")

    async def get_job(self, request: Request) -> Response:
        job = self._job(request.path_params["jid"])
        step = JOB_STEPS.get(job["status"])
        if step is not None:
            if step == "succeeded":
                self._finish_job(job)
            else:
                self._event(job["id"], "Validated training file" if step == "queued" else "Fine-tuning job started")
            job["status"] = step
        return JSONResponse(job)

    async def list_jobs(self, request: Request) -> Response:
        items = sorted(self.jobs.values(), key=lambda j: (j["created_at"], j["id"]), reverse=True)
        return JSONResponse(_page(items, request))

    async def cancel_job(self, request: Request) -> Response:
        job = self._job(request.path_params["jid"])
        if job["status"] in TERMINAL_JOB:
            raise MockError(400, f"Job {job['id']} has already {job['status']} and cannot be cancelled.")
        job.update(status="cancelled", finished_at=int(time.time()))
        self._event(job["id"], "The job was cancelled")
        return JSONResponse(job)

    async def list_events(self, request: Request) -> Response:
        job = self._job(request.path_params["jid"])
        page = _page(list(reversed(self.events[job["id"]])), request)
        return JSONResponse({"object": "list", "data": page["data"], "has_more": page["has_more"]})

    async def list_checkpoints(self, request: Request) -> Response:
        job = self._job(request.path_params["jid"])
        return JSONResponse(_page(self.checkpoints[job["id"]], request, default_limit=10))
