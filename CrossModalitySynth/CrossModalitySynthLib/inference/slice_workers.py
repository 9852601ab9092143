"""Slice parallelism on the CPU: pieces of a batch of slices run on worker threads at once.

A 2D network treats every slice on its own, so a batch can be cut into pieces (groups of whole
slices) that run side by side, each worker with a share of the torch threads (one each on a
small machine), instead of all threads working together on every operation of the whole batch:
fewer thread synchronisations, and each core keeps its own slice in its own cache (figures:
``Testing/Benchmarks/results/cpu_kernels.md``).

torch releases the GIL inside its operators, so Python threads suffice. Thread count, inference
mode and grad mode are per thread in torch: each worker sets its own from the caller's.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class SliceWorkers:
    """A small pool of worker threads for pieces of a slice batch (created on first use)."""

    #: At most this many workers (each keeps its own work buffers, ~60 MB for a 256 x 256 slice
    #: of the paper-size generator).
    max_workers = 8

    def __init__(self, max_workers: Optional[int] = None) -> None:
        if max_workers is not None:
            self.max_workers = int(max_workers)
        self._executor: Optional[ThreadPoolExecutor] = None
        self._size = 0
        self._pid = os.getpid()

    def count(self, slices: Optional[int] = None) -> int:
        """Workers for a batch of ``slices`` (None: any size): one per torch thread, at most one per slice."""
        import torch

        limit = self.max_workers if slices is None else min(self.max_workers, int(slices))
        return max(1, min(torch.get_num_threads(), limit))

    def map(self, fn: Callable[[T], R], pieces: Sequence[T], workers: int) -> List[R]:
        """``[fn(p) for p in pieces]``, in order, on up to ``workers`` threads (inline for one)."""
        import torch

        workers = min(int(workers), len(pieces))
        if workers <= 1:
            return [fn(p) for p in pieces]
        per_worker = max(1, torch.get_num_threads() // workers)
        grad_enabled, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

        def run(piece):
            torch.set_num_threads(per_worker)  # this worker thread's own setting
            with torch.inference_mode(inference), torch.set_grad_enabled(grad_enabled):
                return fn(piece)

        return list(self._pool(workers).map(run, pieces))

    def _pool(self, workers: int) -> ThreadPoolExecutor:
        if self._pid != os.getpid():  # a forked child has none of its parent's threads: start afresh
            self._executor, self._size, self._pid = None, 0, os.getpid()
        if self._executor is None or self._size != workers:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="cmsynth-slices")
            self._size = workers
        return self._executor


def split_even(n: int, parts: int) -> List[slice]:
    """``parts`` contiguous, nearly equal index ranges covering ``range(n)`` (none empty)."""
    parts = max(1, min(int(parts), int(n)))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]
