"""Several training processes: which one this is, and how they agree.

``train_adapter`` runs unchanged in one process or in several started by ``torchrun`` /
``accelerate launch`` (PyTorch's DistributedDataParallel: every process holds the model, trains
on its part of each batch, and the gradients are averaged before each step). Those launchers
set ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in each process, and the processes join one
group (the transformers Trainer would form it; the kit forms it first). What the kit adds is
what only one process may do, and how they stay in step:

- :func:`world_size`, :func:`is_main_process`, :func:`local_rank`: read from the launcher's
  variables, so they answer before the group exists;
- :func:`join_group`: form the group early (before the training lock), each process on its own
  GPU if there are GPUs;
- :func:`main_decides`: the main process runs a step that touches shared files (the training
  lock, clearing old checkpoints, saving the adapter) and every process gets its answer, or its
  error, instead of waiting for a process that stopped;
- :func:`largest`: the largest of a number over all processes, e.g. "did any of us get
  SIGTERM?", so that all of them stop at the same step;
- :func:`leave_group`: wait for each other and close the group, before a clean exit.

Standard library and torch.distributed only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Callable
from datetime import timedelta
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


def local_rank() -> int:
    """This process's number on its machine (0 without a launcher): which GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def join_group() -> bool:
    """Join the group of the launched processes; True if there is one (several processes).

    The Trainer would form it later (transformers' ``TrainingArguments``, which keeps a group it
    finds); formed first, the main process can share a refusal before any model loads. With
    GPUs each process takes its own (``LOCAL_RANK``), so that ``"cuda"`` means that one: the
    model is loaded there, not every copy on the first GPU."""
    if world_size() == 1:
        return False
    import torch  # heavy: only where training runs
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank())
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
        atexit.register(_close_group)
    return True


def leave_group() -> None:
    """Wait for every process, then close the group: call it where every process gets to
    (``python -m kit train`` does, after the adapter is saved). Processes that close their
    connections one after the other can make the last one abort at exit (SIGABRT, seen with
    gloo on a busy machine), and torchrun then reports the run as failed."""
    import torch.distributed as dist

    if world_size() > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _close_group() -> None:
    """At exit, without waiting: a process leaving on its own error must not wait for others
    that are still training (torchrun stops them when it sees this one gone)."""
    import torch.distributed as dist

    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def largest(value: int) -> int:
    """The largest ``value`` of all processes (each must call this at the same point)."""
    if not join_group():
        return value
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    number = torch.tensor([value], device=device)
    dist.all_reduce(number, op=dist.ReduceOp.MAX)
    return int(number.item())


def main_decides(step: Callable[[], T]) -> T:
    """Run ``step()`` on the main process only; every process returns its result.

    Use it for a step that writes shared files and whose outcome all processes need (which
    checkpoint to resume from). If the step raises on the main process, the others raise
    ProcessGroupError with its message instead of waiting for ever; the main process raises the
    original error. With one process this is just ``step()``."""
    if not join_group():
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
