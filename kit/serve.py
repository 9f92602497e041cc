"""Serve one RAG pipeline to a room: ``python -m kit serve [--index DIR | --docs DIR]``.

A workshop's attendees (or a team's prototype users) query one shared index on one machine,
instead of each laptop embedding its own. JSON over HTTP, with Python's own HTTP server:

- ``POST /ask`` with ``{"question": "..."}`` -> ``{"question", "answer", "sources", "cited",
  "attributed", "seconds"}``: ``sources`` are the documents the model was shown (``id`` and
  ``label``), ``cited`` the ids the model wrote, ``attributed`` those or else the shown source
  the answer's words come from (:mod:`kit.attribution`).
- ``GET /health`` -> ``{"status": "ok", "index", "role", "answered", "batches"}``.

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
gets a 4xx with a message saying what to send (400, 404, 405, 411, 413; 422 for a question the
RAG refuses; 503 when busy; 500, without details, only for a failure of the server itself).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kit.citations import doc_id, source_label
from kit.generate import Answer
from kit.inputs import number
from kit.rag import RAG, RagError, build_rag

MAX_BODY = 16_384
"""Largest request body accepted, in bytes (a question is a few hundred)."""

MAX_QUESTION = 2_000
"""Longest question accepted, in characters."""


class Busy(Exception):
    """The queue of waiting questions is full, or the server is stopping: try again later."""


class Refused(RagError):
    """The RAG refused this question (too long for the model, ...): the message says why."""


@dataclass
class _Job:
    """One waiting question and, once the worker is done, its answer or what went wrong."""

    question: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    error: str | None = None  # what went wrong, for the client
    refused: bool = False  # the question was refused (4xx), not a failure of the server (5xx)
    stopped: bool = False  # the server stopped before answering it: try again later (503)


class AnswerQueue:
    """Dynamic batching in front of one RAG: :meth:`ask` from any thread; one worker answers.

    In: the RAG; ``batch_size`` (most questions per generation), ``wait`` (seconds the worker
    waits for more questions after the first), ``max_waiting`` (questions queued before
    :class:`Busy`). ``answered`` and ``batches`` count the questions and batches so far (what
    ``/health`` shows).
    """

    def __init__(
        self, rag: RAG, batch_size: int = 8, wait: float = 0.05, max_waiting: int = 64
    ) -> None:
        self.rag = rag
        self.batch_size = int(number(batch_size, "batch_size", low=1, whole=True))
        self.wait = float(number(wait, "wait", low=0))  # checked here: the worker must not die
        max_waiting = int(number(max_waiting, "max_waiting", low=0, whole=True))  # 0: no bound
        self._waiting: queue.Queue[_Job] = queue.Queue(maxsize=max_waiting)
        self.answered = self.batches = 0
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="kit-serve-worker", daemon=True)
        self._worker.start()

    def ask(self, question: str, timeout: float = 600.0) -> Answer:
        """The RAG's answer to ``question`` (blocks until it is ready). Raises Busy when the
        queue is full, the server is stopping or no answer came in ``timeout`` seconds; Refused
        when the RAG refused the question; RagError when answering failed."""
        if self._stop.is_set():
            raise Busy("the server is stopping")
        job = _Job(question)
        try:
            self._waiting.put_nowait(job)
        except queue.Full:
            raise Busy("the server is busy: too many questions waiting; try again") from None
        if not job.done.wait(timeout):
            raise Busy(f"no answer within {timeout:.0f} s: the server is overloaded")
        if job.stopped:
            raise Busy("the server is stopping")
        if job.error is not None:
            raise (Refused if job.refused else RagError)(job.error)
        assert job.answer is not None
        return job.answer

    def close(self) -> None:
        """Stop: the worker finishes the batch it is on; questions still waiting are told the
        server is stopping."""
        self._stop.set()
        self._worker.join(timeout=60)
        while True:
            try:
                job = self._waiting.get_nowait()
            except queue.Empty:
                break
            job.stopped = True
            job.done.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = [self._waiting.get(timeout=0.2)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.wait
            while len(jobs) < self.batch_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    jobs.append(self._waiting.get(timeout=left))
                except queue.Empty:
                    break
            self._answer(jobs)

    def _answer(self, jobs: list[_Job]) -> None:
        """Answer ``jobs`` in one batch; if that fails, one at a time (n more generations), so
        that one bad question gets its own error and the others their answers. A question the
        RAG refuses (RagError, ValueError) is the client's to fix; anything else is the
        server's, logged here and reported without details."""
        try:
            answers = self.rag.answer_batch([j.question for j in jobs])
            for job, answer in zip(jobs, answers, strict=True):
                job.answer = answer
        except Exception:  # noqa: BLE001 - each question is retried alone below
            for job in jobs:
                try:
                    job.answer = self.rag.answer_batch([job.question])[0]
                except (RagError, ValueError) as err:
                    job.error, job.refused = str(err), True
                except Exception:  # noqa: BLE001 - the client gets a 500, the log the details
                    traceback.print_exc()
                    job.error = "answering failed on the server; its log says why"
        self.answered += len(jobs)
        self.batches += 1
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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
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
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise ValueError("the question holds a character that is not valid text") from None
    return question


class _Handler(BaseHTTPRequestHandler):
    """``GET /health`` and ``POST /ask``; other paths and methods get a 404 / 405 with a message.

    A reply to a request whose body was not read closes the connection (``Connection: close``):
    with keep-alive, an unread body would otherwise be read as the next request.
    """

    server: _KitServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a silent or slow client may hold its connection

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/health":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found: use GET /health or POST /ask"})
            return
        answers = self.server.answers
        self._send(
            HTTPStatus.OK,
            {
                "status": "ok",
                "index": repr(answers.rag.index),
                "role": answers.rag.role,
                "answered": answers.answered,
                "batches": answers.batches,
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/ask":
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found: POST your question to /ask"})
            return
        length = self.headers.get("Content-Length") or ""
        if not (length.isascii() and length.isdigit() and len(length) <= 9):
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "send a Content-Length header"})
            return
        if int(length) > MAX_BODY:
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"the body has {length} bytes; at most {MAX_BODY}"},
            )
            return
        body = self.rfile.read(int(length))
        try:
            answer = self.server.answers.ask(read_question(body))
        except Busy as err:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(err)}, True, retry_after=5)
        except (ValueError, Refused) as err:  # the client's to fix
            status = HTTPStatus.BAD_REQUEST if isinstance(err, ValueError) else 422
            self._send(status, {"error": str(err)}, True)
        except RagError as err:  # the server's
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(err)}, True)
        else:
            self._send(HTTPStatus.OK, answer_json(answer), True)

    def do_PUT(self) -> None:  # noqa: N802 - the name http.server calls
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use GET /health or POST /ask"})

    do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = do_PUT  # noqa: N815 - http.server's
    do_HEAD = do_GET  # noqa: N815 - curl -I /health: GET's status and headers

    def _send(
        self,
        status: HTTPStatus | int,
        payload: dict[str, Any],
        body_read: bool = False,
        retry_after: int = 0,
    ) -> None:
        """Reply with ``payload`` as JSON; close the connection unless the body was read."""
        body = json.dumps(payload).encode("utf-8")
        self.close_connection = self.close_connection or not body_read
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if retry_after:
                self.send_header("Retry-After", str(retry_after))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":  # HEAD: the headers GET would send, no body
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up: nothing to tell
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if self.server.quiet:
            return
        super().log_message(format, *args)


class _KitServer(ThreadingHTTPServer):
    """The HTTP server, holding the :class:`AnswerQueue` its handlers ask."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], answers: AnswerQueue, quiet: bool):
        super().__init__(address, _Handler)
        self.answers, self.quiet = answers, quiet


def make_server(
    rag: RAG,
    host: str = "127.0.0.1",
    port: int = 8000,
    batch_size: int = 8,
    wait: float = 0.05,
    quiet: bool = False,
) -> _KitServer:
    """An HTTP server answering with ``rag`` (not started: call ``serve_forever()``; to stop,
    ``shutdown()``, ``server_close()`` and ``answers.close()``). ``port=0`` picks a free port
    (``server.server_address`` says which). Every answer reads as the RAG's own role
    (``build_rag(index, role=...)``). ``batch_size`` and ``wait``: see :class:`AnswerQueue`.
    IPv4 only."""
    port = int(number(port, "port", low=0, high=65535, whole=True))
    answers = AnswerQueue(rag, batch_size=batch_size, wait=wait)
    try:
        return _KitServer((host, port), answers, quiet)
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
    default_access: str | None = None,
    skip_bad: bool = False,
) -> None:
    """``python -m kit serve``: load a saved index (``index_dir``), or index a folder (``docs``,
    saved beside it and reused; ``default_access`` / ``skip_bad`` as in
    :func:`kit.data.load_folder`), or the bundled knowledge base; serve it until Ctrl-C."""
    from kit.saved_index import bundled_index, index_folder, load_index

    if index_dir and docs:
        raise RagError("pass --index DIR (a saved index) or --docs DIR (a folder), not both")
    if index_dir:
        index = load_index(index_dir)
    elif docs:
        index = index_folder(docs, default_access=default_access, skip_bad=skip_bad)
    else:  # saved in the kit's cache: a second start is not embedded again
        index = bundled_index("v1")
    rag = build_rag(index, profile=profile, role=role)
    rag.llm.warm_up()  # load the model now, not on the first question
    server = make_server(rag, host, port)
    where = f"http://{server.server_address[0]}:{server.server_address[1]}"
    print(f"Serving {index!r} as role {role!r} on {where}")
    print(f'  curl -s {where}/ask -d \'{{"question": "How much does the Fennick S2 cost?"}}\'')
    if host not in ("127.0.0.1", "localhost"):
        print(
            f"  reachable by anyone on this network, at this machine's address (not {host}); "
            f"every answer reads as {role!r}"
        )
    print("Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever()
    finally:  # Ctrl-C: stop listening, let the worker finish its batch
        server.server_close()
        print("stopping: finishing the questions being answered ...", flush=True)
        server.answers.close()
