"""Files, batches and fine-tuning through the gateway, driven by the real ``openai`` SDK (base_url ``{gw}/v1``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from ailink.testing import EmulatorGateway

from .conftest import bearer


def line(custom_id: str, text: str, url: str = "/v1/chat/completions") -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": url,
            "body": {"model": "mock-gpt", "messages": [{"role": "user", "content": text}]}}


def jsonl(*rows: object) -> io.BytesIO:
    return io.BytesIO(("\n".join(json.dumps(r) for r in rows) + "\n").encode())


TRAINING = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}] * 2


@pytest.fixture
def llm_token(ailink_gateway: EmulatorGateway) -> str:
    return ailink_gateway.create_token(upstream="llm")


@pytest.fixture
def oai(ailink_gateway: EmulatorGateway, llm_token: str) -> Iterator[openai.OpenAI]:
    # The gateway's response cache keys on ``model`` (not ``training_file``): these mock tests opt out of it.
    client = openai.OpenAI(api_key=llm_token, base_url=f"{ailink_gateway.url}/v1", max_retries=0,
                           default_headers={"Cache-Control": "no-cache"})
    try:
        yield client
    finally:
        client.close()


def test_files_upload_list_retrieve_content_delete(oai: openai.OpenAI) -> None:
    uploaded = oai.files.create(file=("requests.jsonl", jsonl(line("a", "hi"))), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch" and uploaded.filename == "requests.jsonl"
    tuning = oai.files.create(file=("train.jsonl", jsonl(*TRAINING)), purpose="fine-tune")
    assert {f.id for f in oai.files.list()} == {uploaded.id, tuning.id}
    assert [f.id for f in oai.files.list(purpose="fine-tune")] == [tuning.id]
    assert oai.files.retrieve(uploaded.id).bytes == uploaded.bytes
    assert json.loads(oai.files.content(uploaded.id).text) == line("a", "hi")
    assert oai.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(uploaded.id)
    with pytest.raises(openai.BadRequestError):
        oai.files.create(file=("x.jsonl", jsonl({"a": 1})), purpose="nonsense")  # type: ignore[arg-type]


def test_batch_lifecycle_runs_every_line_through_the_mock(oai: openai.OpenAI, ailink_gateway: EmulatorGateway,
                                                          llm_token: str) -> None:
    ailink_gateway.script_llm(llm_token, [{"content": "scripted answer"}])
    source = oai.files.create(file=("in.jsonl", jsonl(line("first", "one"), line("second", "two"))), purpose="batch")
    batch = oai.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h",
                               metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.request_counts is not None and batch.request_counts.total == 2
    statuses = [oai.batches.retrieve(batch.id).status for _ in range(4)]
    assert statuses == ["in_progress", "finalizing", "completed", "completed"]
    done = oai.batches.retrieve(batch.id)
    assert done.request_counts is not None and done.request_counts.completed == 2 and done.output_file_id
    results = [json.loads(r) for r in oai.files.content(done.output_file_id).text.splitlines()]
    answers = {r["custom_id"]: r["response"]["body"]["choices"][0]["message"]["content"] for r in results}
    assert answers == {"first": "scripted answer", "second": "Echo: two"}
    assert [b.id for b in oai.batches.list()] == [batch.id]
    with pytest.raises(openai.BadRequestError):
        oai.batches.cancel(batch.id)


def test_batch_cancel_and_bad_inputs(oai: openai.OpenAI) -> None:
    source = oai.files.create(file=("in.jsonl", jsonl(line("a", "x"))), purpose="batch")
    batch = oai.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert oai.batches.cancel(batch.id).status == "cancelling"
    assert oai.batches.retrieve(batch.id).status == "cancelled"
    bad_lines = oai.files.create(file=("bad.jsonl", jsonl(line("a", "x"), line("a", "y"),
                                                          line("b", "z", url="/v1/embeddings"))), purpose="batch")
    failed = oai.batches.create(input_file_id=bad_lines.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert failed.status == "failed" and failed.errors is not None
    assert [(e.code, e.line) for e in failed.errors.data or []] == [("duplicate_custom_id", 2), ("invalid_url", 3)]
    with pytest.raises(openai.NotFoundError):
        oai.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        oai.batches.create(input_file_id=source.id, endpoint="/v1/images", completion_window="24h")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_missing")


def test_fine_tuning_job_lifecycle(oai: openai.OpenAI) -> None:
    training = oai.files.create(file=("train.jsonl", jsonl(*TRAINING)), purpose="fine-tune")
    job = oai.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=training.id, suffix="support",
                                      hyperparameters={"n_epochs": 2}, seed=7)
    assert job.status == "validating_files" and job.seed == 7 and job.fine_tuned_model is None
    assert [oai.fine_tuning.jobs.retrieve(job.id).status for _ in range(3)] == ["queued", "running", "succeeded"]
    done = oai.fine_tuning.jobs.retrieve(job.id)
    assert done.fine_tuned_model is not None and done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:")
    assert ":support:" in done.fine_tuned_model and done.trained_tokens and done.result_files
    assert [j.id for j in oai.fine_tuning.jobs.list()] == [job.id]
    events = [e.message for e in oai.fine_tuning.jobs.list_events(job.id)]
    assert events[0] == "The job has successfully completed" and events[-1].startswith("Created fine-tuning job")
    checkpoints = list(oai.fine_tuning.jobs.checkpoints.list(job.id))
    assert [c.step_number for c in checkpoints] == [4, 2]
    assert checkpoints[0].fine_tuned_model_checkpoint == done.fine_tuned_model
    with pytest.raises(openai.BadRequestError):
        oai.fine_tuning.jobs.cancel(job.id)


def test_fine_tuning_cancel_and_bad_inputs(oai: openai.OpenAI) -> None:
    training = oai.files.create(file=("train.jsonl", jsonl(*TRAINING)), purpose="fine-tune")
    job = oai.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id)
    assert oai.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    assert oai.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    not_chat = oai.files.create(file=("bad.jsonl", jsonl({"prompt": "x", "completion": "y"})), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="line 1"):
        oai.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=not_chat.id)
    batch_file = oai.files.create(file=("b.jsonl", jsonl(line("a", "x"))), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        oai.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=batch_file.id)
    with pytest.raises(openai.BadRequestError, match="suffix"):
        oai.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training.id, suffix="Not Valid!")
    with pytest.raises(openai.NotFoundError):
        oai.fine_tuning.jobs.retrieve("ftjob-missing")


def test_jobs_need_a_valid_token_and_are_audited(ailink_gateway: EmulatorGateway, oai: openai.OpenAI,
                                                 llm_token: str) -> None:
    stranger = openai.OpenAI(api_key="ailink_v1_wrong", base_url=f"{ailink_gateway.url}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.files.list()
    with pytest.raises(openai.AuthenticationError):
        stranger.batches.create(input_file_id="file-x", endpoint="/v1/chat/completions", completion_window="24h")
    oai.files.create(file=("t.jsonl", jsonl(*TRAINING)), purpose="fine-tune")
    assert [r["path"] for r in ailink_gateway.audit()] == ["/v1/files"]
    # plain httpx: a malformed JSON body is an OpenAI-shaped 400, never a 500
    resp = httpx.post(f"{ailink_gateway.url}/v1/fine_tuning/jobs", content=b"{nope",
                      headers={**bearer(llm_token), "Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_malformed_requests_get_openai_shaped_400s(ailink_gateway: EmulatorGateway, llm_token: str) -> None:
    headers = bearer(llm_token)
    cases = [
        ("POST", "/v1/files", {"content": b"--xx\r\nbroken", "headers": {"Content-Type": "multipart/form-data"}}),
        ("POST", "/v1/files", {"files": {"file": ("a.txt", b"x")}}),  # no purpose
        ("POST", "/v1/files", {"files": {"file": ("a.txt", b"")}, "data": {"purpose": "batch"}}),
        ("POST", "/v1/fine_tuning/jobs", {"json": {"model": "m", "training_file": "f", "hyperparameters": "x"}}),
        ("POST", "/v1/batches", {"json": [1]}),
        ("GET", "/v1/batches?limit=abc", {}),
        ("GET", "/v1/fine_tuning/jobs?after=ftjob-unknown", {}),
    ]
    with httpx.Client(base_url=ailink_gateway.url, headers=headers) as c:
        for method, path, kwargs in cases:
            resp = c.request(method, path, **kwargs)  # type: ignore[arg-type]
            assert resp.status_code in (400, 404), (path, resp.text)
            assert resp.json()["error"]["type"] == "invalid_request_error", (path, resp.text)
        assert c.post("/v1/files", json={"purpose": "batch"}).status_code == 415
