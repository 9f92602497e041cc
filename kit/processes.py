"""Several training processes: which one this is, and how they agree.

``train_adapter`` runs unchanged in one process or in several started by ``torchrun`` /
``accelerate launch`` (PyTorch's DistributedDataParallel: every process holds the model, trains
on its part of each batch, and the gradients are averaged before each step). Those launchers
set ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in each process; the transformers Trainer then
joins the processes into one group. What the kit must add is what only one process may do:

- :func:`world_size`, :func:`is_main_process`: read from the launcher's variables, so they
  answer before the group exists (the training lock is taken before the model loads);
- :func:`main_decides`: the main process runs a step that touches shared files (clearing old
  checkpoints, deciding where to resume) and every process gets its answer, or its error;
- :func:`wait_for_everyone`: a barrier, e.g. after the main process saved the adapter.

Standard library and torch.distributed only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ProcessGroupError(RuntimeError):
    """The main process failed at a step the others were waiting for."""


def world_size() -> int:
    """How many training processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True in the process of global rank 0, or when there is only one process."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def _group_ready() -> bool:
    """True when this process has joined a group of several (the Trainer's set-up does it)."""
    import torch.distributed as dist  # heavy: only where training runs

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def wait_for_everyone() -> None:
    """Block until every process gets here (nothing to wait for with one process)."""
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def main_decides(step: Callable[[], T]) -> T:
    """Run ``step()`` on the main process only; every process returns its result.

    Use it for a step that writes shared files and whose outcome all processes need (which
    checkpoint to resume from). If the step raises on the main process, the others raise
    ProcessGroupError with its message instead of waiting for ever; the main process raises the
    original error. With one process this is just ``step()``."""
    if not _group_ready():
        return step()
    import torch.distributed as dist

    box: list[Any] = [None]
    error: BaseException | None = None
    if is_main_process():
        try:
            box = [("ok", step())]
        except BaseException as err:  # shared first, so no process waits for ever
            error = err
            box = [("error", f"{type(err).__name__}: {err}")]
    dist.broadcast_object_list(box, src=0)
    if error is not None:
        raise error
    kind, value = box[0]
    if kind == "error":
        raise ProcessGroupError(f"The main training process stopped: {value}")
    return value
