"""One ``mofrr restore`` batch across several processes (``accelerate launch`` or ``torchrun``).

Without a launcher there is one process and these helpers change nothing. With one, the processes
are accelerate's :class:`~accelerate.PartialState` (gloo on CPUs, NCCL on GPUs): the main process
plans the batch and the others receive its plan, every step before the first image agrees on
failure (a setup error anywhere is exit 2 on every process), each process restores its share of
the inputs (``split_between_processes``), and the outcomes are gathered so that the main process
prints one summary and every process returns the same exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

WAIT_LIMIT = timedelta(days=7)
"""How long a process waits for the others (gloo/NCCL timeout; the default 30 min is too short when one
share of a large batch takes longer than another). A process that dies ends the others at once anyway:
the launcher stops them."""


class OtherProcessFailed(RuntimeError):
    """A step before the first image failed in another process; the message is that process's error."""


@contextmanager
def batch_processes(device: str | None = None) -> Iterator[Any]:
    """The processes of this batch as a ``PartialState`` (one process without a launcher).

    Processes on CPUs (no CUDA, ``--device cpu``, ``accelerate launch --cpu``) talk through gloo. With
    several processes on CPUs each gets an equal share of the cores as torch threads. At the end the
    processes wait for each other (so none is stopped by the launcher before the main one has printed
    its summary) and the process group is closed (an open gloo group aborts the interpreter at exit).
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = (not torch.cuda.is_available() or str(device or "").startswith("cpu")
           or parse_flag_from_env("ACCELERATE_USE_CPU"))
    state = PartialState(cpu=cpu, timeout=WAIT_LIMIT)
    threads = torch.get_num_threads()
    try:
        if state.num_processes > 1 and state.device.type == "cpu":
            torch.set_num_threads(threads_per_process(state))
        yield state
        if state.num_processes > 1:  # everything printed before any process ends: the launcher then stops the rest
            sys.stdout.flush()
            sys.stderr.flush()
            state.wait_for_everyone()
    finally:
        torch.set_num_threads(threads)
        if state.num_processes > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def threads_per_process(state) -> int:
    """The cores this process may use divided by the batch's processes on this machine (at least 1)."""
    from mofrr_core.train.trainer import default_threads

    return default_threads(0, int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes)))


def process_device(state, device: str) -> str:
    """``device`` for this process: a bare ``cuda`` becomes this process's own GPU (``cuda:<local rank>``)
    when several processes run on GPUs; anything else is kept."""
    if state.num_processes > 1 and device == "cuda" and state.device.type == "cuda":
        return str(state.device)
    return device


def run_everywhere(state, step: Callable[[], T], describe: Callable[[BaseException], str], *,
                   main_only: bool = False) -> T:
    """``step()`` on every process (or on the main one only, its result then sent to the others), and
    every process agrees on the outcome: if it raised anywhere, the failing process re-raises its own
    exception and the others raise :class:`OtherProcessFailed` with ``describe(error)`` of the first
    failure. One process: ``step()`` itself.
    """
    if state.num_processes == 1:
        return step()
    from accelerate.utils import broadcast_object_list, gather_object

    result, error = None, None
    if state.is_main_process or not main_only:
        try:
            result = step()
        except Exception as exc:  # noqa: BLE001 - handed to every process, re-raised below
            error = exc
    messages = [m for m in gather_object([describe(error) if error else None]) if m is not None]
    if main_only:
        result = broadcast_object_list([result])[0]
    if error is not None:
        raise error
    if messages:
        raise OtherProcessFailed(messages[0])
    return result


def gather_outcomes(state, restored: int, failed: list[str]) -> tuple[int, list[str]]:
    """``(restored, failed)`` summed over the processes, the failed inputs in process order."""
    if state.num_processes == 1:
        return restored, failed
    from accelerate.utils import gather_object

    outcomes = gather_object([(restored, failed)])
    return sum(count for count, _ in outcomes), [name for _, names in outcomes for name in names]
