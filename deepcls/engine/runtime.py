"""Process-wide settings, applied once by the entry points (CLI, runner workers, notebooks' runner
calls) rather than by a training run: the device, torch's thread count, the allocator, denormals,
cuDNN (whether progress bars show: deepcls.progress)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from deepcls.numeric import resolve_device

TINY = 1e-20  # its square, 1e-40, lies below float32's smallest normal number (1.18e-38)
_flushing: bool | None = None


def flush_denormals() -> bool:
    """Have this CPU flush denormal floats to zero, once per process; False where it cannot or
    ``$DEEPCLS_FLUSH_DENORMAL=0``.

    Late in training, squared gradients fall below float32's normal range, and every Adam step then
    takes the CPU's slow path for them, many times slower (``python -m deepcls.bench.denormals``
    measures a fused Adam step both ways). Values that small change no update (Adam adds eps = 1e-8
    to their square root), but the arithmetic is no longer bit for bit that of runs trained without
    it; ``metrics.json`` records which (``flush_denormal``). Torch's intra-op threads take the
    setting of the thread that starts them, so it must come before any torch work: the CLI and the
    runner's workers call it first.
    """
    global _flushing
    if _flushing is None:
        _flushing = os.environ.get("DEEPCLS_FLUSH_DENORMAL", "1") != "0" and torch.set_flush_denormal(True)
    return _flushing


def flushes_denormals() -> bool:
    """Whether every intra-op thread now flushes denormal results to zero: squares of 1e-20, over
    enough elements to be split among all the threads, come out all zero bit for bit (a thread
    started before :func:`flush_denormals` would leave its share at about 1e-40)."""
    tiny = torch.full((1 << 22,), TINY)
    return int(torch.count_nonzero((tiny * tiny).view(torch.int32))) == 0


def configure(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    """Set up this process for training on ``device``; returns the resolved device.

    ``threads`` sets torch's intra-op thread count (None leaves it). On the CPU, denormal floats are
    flushed to zero (:func:`flush_denormals`) and freed memory is kept inside the process
    (deepcls.engine.runtime); on CUDA, kernels are deterministic where that costs little
    (:func:`deterministic_cuda`), and convolutions and matmuls stay in fp32: cuDNN's default TF32 would round
    GPU runs differently from the CPU runs the ledger compares them with (a different seed of the
    same row may have trained on either), while the report's small models are bound by kernel
    launches, not arithmetic.
    """
    resolved = resolve_device(device) if isinstance(device, str) else device
    if resolved.type == "cpu":
        flush_denormals()  # before set_num_threads may start threads without it
    if threads:
        torch.set_num_threads(threads)
    if resolved.type == "cpu":
        keep_freed_memory()
    if resolved.type == "cuda":
        deterministic_cuda()
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return resolved


def deterministic_cuda() -> None:
    """Deterministic kernels on CUDA where they cost little: cuDNN's deterministic convolutions (no
    benchmark search, whose choice of algorithm may differ between processes), cuBLAS with a fixed
    workspace (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS starts: set before any CUDA work, as
    :func:`configure` is called), and torch's deterministic algorithms. Ops that have no deterministic
    CUDA kernel still run (``warn_only``) and are not pinned: in deepcls's models, the backward pass of
    adaptive average pooling (the ResNets' head)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation.*")


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1  # mallopt takes an int

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Keep freed memory inside the process on glibc, once per process; False where it does not
    apply (not glibc, or ``$DEEPCLS_KEEP_FREED_MEMORY=0``).

    A CPU training step allocates and frees tens of MB (autocast's bf16 weight copies, fp32
    gradients). glibc serves blocks above its mmap threshold with fresh mappings and unmaps them on
    free, so the next step faults its pages back in one at a time; raising the mmap and trim
    thresholds makes glibc reuse the memory instead. Changes speed and resident memory only
    (histories are identical, tested)."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux") and os.environ.get("DEEPCLS_KEEP_FREED_MEMORY", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl and others have no mallopt
                return False
            _applied = bool(mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST))
    return _applied


@contextmanager
def thread_count(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count at ``threads`` for the block (None: as it is), then as it was:
    a measurement in a caller's process (a notebook, a test) must not change how its later training
    rounds floats."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
