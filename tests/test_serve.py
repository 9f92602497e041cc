"""kit.serve: one RAG answering many clients over HTTP on loopback, batched, bounded, and
polite to malformed requests."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from kit import rag
from kit.__main__ import main
from kit.citations import doc_id
from kit.data import load_documents
from kit.evaluate import eval_records
from kit.generate import Answer
from kit.inputs import InputError
from kit.serve import MAX_BODY, AnswerQueue, Busy, Refused, make_server, read_question


@pytest.mark.parametrize(
    "body, said",
    [
        (b"How much?", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'["How much?"]', "JSON object, not list"),
        (b"{}", "'question' must be non-empty text"),
        (b'{"question": "  "}', "'question' must be non-empty text"),
        (b'{"question": 42}', "'question' must be non-empty text"),
        (b'{"question": "Hi", "role": "admin"}', "the access level is the server's"),
        (json.dumps({"question": "x" * 2001}).encode(), "at most 2000"),
        (b"[" * 16000, "not JSON"),  # nested too deep for the parser
        (b'{"question": "\\ud800"}', "not valid text"),  # a lone surrogate
    ],
)
def test_a_malformed_body_is_refused_with_what_to_send(body, said):
    with pytest.raises(ValueError) as err:
        read_question(body)
    assert said in str(err.value)


class _Slow:
    """A stand-in for a RAG whose answers wait for ``go`` (to fill the queue) and which fails
    on the question "bad"."""

    def __init__(self) -> None:
        self.go, self.started = threading.Event(), threading.Event()

    def answer_batch(self, questions):
        self.started.set()
        self.go.wait(30)
        if "bad" in questions:
            raise rag.RagError("the question is too long for the model")
        return [Answer(q, f"answer to {q}") for q in questions]


def _until(condition) -> None:
    """Wait up to 3 s for ``condition()`` (another thread is about to make it true)."""
    for _ in range(300):
        if condition():
            return
        time.sleep(0.01)


@contextmanager
def _worker_holding_one(wait: float, threads: int):
    """A queue (at most 3 waiting) whose worker holds the question "one" until ``slow.go``
    is set: yields (slow, the queue, a thread pool, the future of "one"); closed at the end."""
    slow = _Slow()
    answers = AnswerQueue(slow, batch_size=4, wait=wait, max_waiting=3)
    try:
        with ThreadPoolExecutor(threads) as pool:
            first = pool.submit(answers.ask, "one")
            assert slow.started.wait(30)  # the worker holds "one" and waits on `go`
            yield slow, answers, pool, first
    finally:
        slow.go.set()
        answers.close()


def test_the_queue_is_bounded_and_one_bad_question_fails_alone():
    with _worker_holding_one(wait=0.3, threads=4) as (slow, answers, pool, first):
        queued = [pool.submit(answers.ask, q) for q in ("two", "bad", "three")]
        _until(answers._waiting.full)  # the three are in the queue
        with pytest.raises(Busy, match="busy"):
            answers.ask("four")  # three waiting already: refused at once, not blocked
        slow.go.set()
        assert first.result(30).text == "answer to one"
        assert [f.exception(30) is None for f in queued] == [True, False, True]
        assert "too long for the model" in str(queued[1].exception())
        assert queued[2].result().text == "answer to three"
        assert isinstance(queued[1].exception(), Refused)  # the client's: a 422
    with pytest.raises(Busy, match="stopping"):
        answers.ask("after close")


@pytest.mark.parametrize(
    "settings, said",
    [
        ({"batch_size": "8"}, "batch_size"),
        ({"wait": None}, "wait"),
        ({"port": 70000}, "port"),
        ({"port": "8080"}, "port"),
    ],
)
def test_bad_settings_are_refused_before_a_worker_starts(settings, said):
    workers = lambda: sum(t.name == "kit-serve-worker" for t in threading.enumerate())  # noqa: E731
    before = workers()
    with pytest.raises(InputError, match=said):
        make_server(object(), **settings)  # no RAG is needed to refuse them
    assert workers() == before  # no worker left polling with the model


def test_a_question_still_waiting_when_the_server_stops_is_told_to_retry():
    """close() while a question waits: its ``ask`` raises Busy (a 503 with Retry-After, as
    for a full queue), not RagError (a 500, the server's failure)."""
    with _worker_holding_one(wait=0.1, threads=3) as (slow, answers, pool, first):
        waiting = pool.submit(answers.ask, "two")
        _until(lambda: not answers._waiting.empty())  # "two" is in the queue
        closing = pool.submit(answers.close)
        _until(answers._stop.is_set)  # close() has told the worker to stop
        slow.go.set()
        closing.result(60)
        assert first.result(30).text == "answer to one"  # the batch under way finishes
        with pytest.raises(Busy, match="stopping"):
            waiting.result(30)


@pytest.fixture(scope="module")
def server(index, lm):
    """The server on a free loopback port, answering as role "public" with the bundled model."""
    qa = rag.build_rag(index, "hybrid", generator=lm, profile="smoke", role="public")
    srv = make_server(qa, port=0, wait=0.5, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    srv.answers.close()


def _request(srv, method, path, body=None, length=True):
    """(status, JSON reply) of one request; ``length=False`` sends no Content-Length."""
    conn = http.client.HTTPConnection(*srv.server_address, timeout=300)
    try:
        if length:
            conn.request(method, path, body=body)
        else:
            conn.putrequest(method, path)
            conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_concurrent_questions_are_answered_together_with_their_sources(server):
    questions = [r.question for r in eval_records("test", 6)] + [
        "What is the canary code in the confidential payroll document?"
    ]
    public = {doc_id(d) for d in load_documents("v1") if d.meta["access"] == "public"}
    answered, batches = server.answers.answered, server.answers.batches
    with ThreadPoolExecutor(len(questions)) as pool:
        replies = list(
            pool.map(
                lambda q: _request(server, "POST", "/ask", json.dumps({"question": q})), questions
            )
        )
    for question, (status, data) in zip(questions, replies, strict=True):
        assert status == 200, data
        assert data["question"] == question and data["answer"].strip()
        assert data["sources"] and all(s["id"] and s["label"] for s in data["sources"])
        assert {s["id"] for s in data["sources"]} <= public  # the server's role, for everyone
        shown = {s["id"] for s in data["sources"]}
        assert set(data["attributed"]) <= shown | set(data["cited"])
        assert data["attributed"] or not data["cited"]  # a citation is always attributed
    assert server.answers.answered - answered == len(questions)
    assert server.answers.batches - batches < len(questions)  # answered together
    status, health = _request(server, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["role"] == "public"
    assert health["index"].startswith("Index(") and "189 chunks" in health["index"]
    assert health["answered"] == server.answers.answered


@pytest.mark.parametrize(
    "method, path, body, status, said",
    [
        ("POST", "/ask", b"not json", 400, "not JSON"),
        ("POST", "/ask", b'{"question": "Hi", "role": "admin"}', 400, "server's"),
        ("POST", "/ask", b"x" * (MAX_BODY + 1), 413, "at most"),
        ("POST", "/ask", None, 411, "Content-Length"),
        ("POST", "/nowhere", b"{}", 404, "POST your question to /ask"),
        ("GET", "/", None, 404, "GET /health"),
        ("PUT", "/ask", b"{}", 405, "POST /ask"),
        ("OPTIONS", "/ask", None, 405, "POST /ask"),
        ("TRACE", "/ask", None, 405, "POST /ask"),
        ("HEAD", "/health", None, 200, ""),  # GET's status and headers, no body
        ("HEAD", "/", None, 404, ""),
        ("POST", "/ask", b'{"question": "???"}', 200, "I don't know"),  # nothing to look up
    ],
)
def test_each_request_gets_a_reply_that_says_why(server, method, path, body, status, said):
    got, data = _request(server, method, path, body, length=body is not None)
    assert got == status, data
    assert said in (data.get("error") or data.get("answer", ""))


def test_a_body_left_unread_never_passes_for_the_next_request(server):
    """Keep-alive: a request whose body the server does not read (a wrong path, a wrong
    method) closes the connection, so the body is not parsed as a second request."""
    import socket

    body = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"  # a body that looks like a request
    for method in (b"POST /nowhere", b"PUT /ask"):
        with socket.create_connection(server.server_address, timeout=30) as sock:
            sock.sendall(
                method
                + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.count(b"HTTP/1.1 ") == 1, received  # one reply, then closed
        assert received.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405"))


def test_serve_refuses_a_folder_that_holds_no_saved_index(tmp_path, capsys):
    assert main(["serve", "--index", str(tmp_path)]) == 2
    assert "no saved index here" in capsys.readouterr().err
    assert main(["serve", "--index", str(tmp_path), "--docs", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err


def test_answers_per_second_at_1_and_4_clients(server, report_figure):
    """8 questions asked by 1 client, one after another, then by 4 at once: the rates are
    printed after the tests (not asserted: the other test worker shares the CPU); what is
    asserted is that 4 clients are answered in fewer batches than questions."""
    questions = [r.question for r in eval_records("test", 8)]

    def ask(q: str) -> int:
        return _request(server, "POST", "/ask", json.dumps({"question": q}))[0]

    rates, batches = {}, {}
    for clients in (1, 4):
        start, before = time.perf_counter(), server.answers.batches
        with ThreadPoolExecutor(clients) as pool:
            assert set(pool.map(ask, questions)) == {200}
        rates[clients] = len(questions) / (time.perf_counter() - start)
        batches[clients] = server.answers.batches - before
    report_figure(
        "kit serve, smoke profile, 8 questions (the test server waits 0.5 s for company)",
        f"{rates[1]:.2f} answers/s with 1 client, {rates[4]:.2f} with 4 at once",
    )
    assert batches[1] == len(questions) and batches[4] < len(questions)
