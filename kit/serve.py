"""Serve one RAG pipeline to a room: ``python -m kit serve [--index DIR | --docs DIR]``.

A workshop's attendees (or a team's prototype users) query one shared index on one machine,
instead of each laptop embedding its own. JSON over HTTP, with Python's own HTTP server:

- ``POST /ask`` with ``{"question": "..."}`` -> ``{"question", "answer", "sources", "cited",
  "attributed", "seconds"}``: ``sources`` are the documents the model was shown (``id`` and
  ``label``), ``cited`` the ids the model wrote, ``attributed`` those or else the shown source
  the answer's words come from (:mod:`kit.attribution`).
- ``GET /health`` -> ``{"status": "ok", "index": ..., "role": ..., "answered": ...}``.

**Questions that arrive together are answered together.** One worker thread owns the model: it
takes the waiting questions (up to ``batch_size``, after waiting at most ``wait`` seconds for
company) and asks them with :meth:`kit.rag.RAG.answer_batch`, one batched generation. On a CPU
a batch of 8 costs little more than one question (decoding reads the weights once per step for
the whole batch), so 8 people asking at once wait about as long as one. Serving engines call
this dynamic batching. The queue is bounded: when it is full, a request gets 503 "busy" and a
``Retry-After``, not an endless wait.

**What a client cannot do**: choose its access level (the server's ``role``, default
``public``, applies to every question; a client cannot ask for more), reach the server from
another machine unless it was started with ``--host 0.0.0.0``, or crash it: a malformed request
gets a 4xx with a message saying what to send.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kit.citations import doc_id, source_label
from kit.generate import Answer
from kit.rag import RAG, RagError, build_index, build_rag

MAX_BODY = 16_384
"""Largest request body accepted, in bytes (a question is a few hundred)."""

MAX_QUESTION = 2_000
"""Longest question accepted, in characters."""


class Busy(Exception):
    """The queue of waiting questions is full: try again in a moment."""


@dataclass
class _Job:
    """One waiting question and, once the worker is done, its answer or what went wrong."""

    question: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    error: str | None = None


class AnswerQueue:
    """Dynamic batching in front of one RAG: :meth:`ask` from any thread; one worker answers.

    In: the RAG; ``batch_size`` (most questions per generation), ``wait`` (seconds the worker
    waits for more questions after the first), ``max_waiting`` (questions queued before
    :class:`Busy`). ``batches`` records each batch's size, in order (what the tests and
    ``/health`` read).
    """

    def __init__(
        self, rag: RAG, batch_size: int = 8, wait: float = 0.05, max_waiting: int = 64
    ) -> None:
        self.rag, self.batch_size, self.wait = rag, batch_size, wait
        self._waiting: queue.Queue[_Job] = queue.Queue(maxsize=max_waiting)
        self.batches: list[int] = []
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="kit-serve-worker", daemon=True)
        self._worker.start()

    def ask(self, question: str, timeout: float = 600.0) -> Answer:
        """The RAG's answer to ``question`` (blocks until it is ready). Busy when the queue is
        full; RagError with the message when the question cannot be answered."""
        job = _Job(question)
        try:
            self._waiting.put_nowait(job)
        except queue.Full:
            raise Busy("the server is busy: too many questions waiting; try again") from None
        if not job.done.wait(timeout):
            raise RagError(f"no answer within {timeout:.0f} s; the server may be overloaded")
        if job.error is not None:
            raise RagError(job.error)
        assert job.answer is not None
        return job.answer

    def close(self) -> None:
        """Stop the worker after the batch it is on."""
        self._stop.set()
        self._worker.join(timeout=60)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = [self._waiting.get(timeout=0.2)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.wait
            while len(jobs) < self.batch_size and (left := deadline - time.monotonic()) > 0:
                try:
                    jobs.append(self._waiting.get(timeout=left))
                except queue.Empty:
                    break
            self._answer(jobs)

    def _answer(self, jobs: list[_Job]) -> None:
        """Answer ``jobs`` in one batch; if that fails, one at a time, so that one bad question
        gets its own error and the others their answers."""
        try:
            answers = self.rag.answer_batch([j.question for j in jobs])
            for job, answer in zip(jobs, answers, strict=True):
                job.answer = answer
        except Exception:  # noqa: BLE001 - each question is retried alone below
            for job in jobs:
                try:
                    job.answer = self.rag.answer_batch([job.question])[0]
                except Exception as err:  # noqa: BLE001 - reported to that client only
                    job.error = f"{type(err).__name__}: {err}"
        self.batches.append(len(jobs))
        for job in jobs:
            job.done.set()


def answer_json(answer: Answer) -> dict[str, Any]:
    """What ``POST /ask`` returns for an Answer: the text, the shown sources, the cited and
    attributed ids, the seconds it took (its share of its batch)."""
    shown: dict[str, str] = {}
    for doc in answer.documents:
        shown.setdefault(doc_id(doc), source_label(doc))
    return {
        "question": answer.question,
        "answer": answer.text,
        "sources": [{"id": ident, "label": label} for ident, label in shown.items()],
        "cited": list(answer.cited_ids),  # what the model wrote
        "attributed": list(answer.attributed_ids),  # or else the source its words come from
        "seconds": round(answer.timings.get("total", 0.0), 3),
    }


def read_question(body: bytes) -> str:
    """The question in a request body; ValueError saying what to send instead."""
    example = 'send JSON like {"question": "How much does the Fennick S2 cost?"}'
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"the body is not JSON ({err}); {example}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the body must be a JSON object, not {type(data).__name__}; {example}")
    unknown = sorted(set(data) - {"question"})
    if unknown:
        raise ValueError(
            f"unknown field(s) {unknown}: only 'question' is read (the access level is the "
            f"server's); {example}"
        )
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"'question' must be non-empty text; {example}")
    if len(question) > MAX_QUESTION:
        raise ValueError(f"the question has {len(question)} characters; at most {MAX_QUESTION}")
    return question


class _Handler(BaseHTTPRequestHandler):
    """``GET /health`` and ``POST /ask``; everything else is a 4xx with a message."""

    server: _KitServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/health":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found: use GET /health or POST /ask"})
            return
        kit = self.server
        self._send(
            HTTPStatus.OK,
            {
                "status": "ok",
                "index": repr(kit.answers.rag.index),
                "role": kit.role,
                "answered": sum(kit.answers.batches),
                "batches": len(kit.answers.batches),
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/ask":
            self.close_connection = True  # its body is not read: it must not pass for a request
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found: POST your question to /ask"})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "send a Content-Length header"})
            return
        if int(length) > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for a request
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"the body has {length} bytes; at most {MAX_BODY}"},
            )
            return
        try:
            question = read_question(self.rfile.read(int(length)))
            answer = self.server.answers.ask(question)
        except ValueError as err:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        except Busy as err:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(err)}, retry_after=5)
        except RagError as err:
            self._send(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(err)})
        else:
            self._send(HTTPStatus.OK, answer_json(answer))

    def do_PUT(self) -> None:  # noqa: N802 - the name http.server calls
        self.close_connection = True  # its body is not read: it must not pass for a request
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET /health or POST /ask"})

    do_DELETE = do_PATCH = do_PUT  # noqa: N815 - the names http.server calls

    def _send(self, status: HTTPStatus, payload: dict[str, Any], retry_after: int = 0) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if retry_after:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if self.server.quiet:
            return
        super().log_message(format, *args)


class _KitServer(ThreadingHTTPServer):
    """The HTTP server, holding the :class:`AnswerQueue` its handlers ask."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], answers: AnswerQueue, role: str, quiet: bool):
        super().__init__(address, _Handler)
        self.answers, self.role, self.quiet = answers, role, quiet


def make_server(
    rag: RAG,
    host: str = "127.0.0.1",
    port: int = 8000,
    role: str = "public",
    batch_size: int = 8,
    wait: float = 0.05,
    quiet: bool = False,
) -> _KitServer:
    """An HTTP server answering with ``rag`` (not started: call ``serve_forever()``, and
    ``shutdown()`` then ``answers.close()`` to stop). ``port=0`` picks a free port
    (``server.server_address`` says which). ``role``: recorded for ``/health``; the RAG itself
    must have been built with it (:func:`serve_index` does). ``batch_size`` and ``wait``: see
    :class:`AnswerQueue`."""
    answers = AnswerQueue(rag, batch_size=batch_size, wait=wait)
    try:
        return _KitServer((host, port), answers, role, quiet)
    except OSError as err:
        answers.close()
        raise RagError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port"
        ) from None


def serve_index(
    index_dir: str | None = None,
    docs: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    role: str = "public",
    profile: str | None = None,
) -> None:
    """``python -m kit serve``: load a saved index (``index_dir``), or index a folder (``docs``,
    saved beside it and reused), or the bundled knowledge base; serve it until Ctrl-C."""
    from kit.saved_index import index_folder, load_index  # heavy: Haystack

    if index_dir and docs:
        raise RagError("pass --index DIR (a saved index) or --docs DIR (a folder), not both")
    if index_dir:
        index = load_index(index_dir)
    elif docs:
        index = index_folder(docs)
    else:
        index = build_index("v1")
    rag = build_rag(index, profile=profile, role=role)
    rag.llm.warm_up()  # load the model now, not on the first question
    server = make_server(rag, host, port, role=role)
    where = f"http://{server.server_address[0]}:{server.server_address[1]}"
    print(f"Serving {index!r} as role {role!r} on {where}")
    print(f'  curl -s {where}/ask -d \'{{"question": "How much does the Fennick S2 cost?"}}\'')
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"  reachable from other machines on this network; every answer reads as {role!r}")
    print("Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    finally:  # Ctrl-C: stop listening, let the worker finish its batch
        server.server_close()
        server.answers.close()
