"""Where a run trains and with what arithmetic: its device and its *numeric class*.

A seed pins a run only within one numeric class. Two CPUs that both say ``x86_64`` may round bf16
differently (AMX, AVX512-BF16, or conversion in software), a GPU rounds differently again, and a
thread count changes how sums are split. So every run records its class in ``metrics.json``
(``numeric_class``): device kind and name (the CPU's model and its bf16 arithmetic; the GPU's name
and compute capability), threads, precision, and the torch / CUDA / cuDNN versions. None of it is
hashed into the run id: runs of one id trained in different classes differ like samples, and
tables and the ledger name the classes behind each row so nothing pools them silently.

Precision follows the hardware: ``auto`` is bf16 autocast where the hardware computes bf16
natively (CUDA devices that support it; CPUs with AMX or AVX512-BF16) and fp32 elsewhere: a CPU
without either converts bf16 in software and trains several times slower in it.

Reading code (tables, the ledger) imports this module too, so torch is imported only inside the
functions that look at this machine.
"""

from __future__ import annotations

import platform
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepcls.errors import ConfigError, unknown

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # the device names deepcls trains on
BF16_CLASSES = ("amx", "avx512_bf16", "emulated")
EMULATED_BF16_WARNING = (
    "this CPU emulates bf16 in software (no AMX or AVX512-BF16): training runs several times slower than in "
    "fp32; leave --precision at auto for fp32"
)


# ---------------------------------------------------------------------- this machine
def device_type(device: str) -> str:
    """``cuda``, ``cpu`` or ``mps``: where a run of this device setting trains (no check that it exists)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else Apple's MPS, else the CPU; any other name as given, if
    this machine has it."""
    import torch

    if not isinstance(device, str) or DEVICE.fullmatch(device) is None:
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            have = f"it has {count} CUDA device(s)" if count else "CUDA is not available"
            raise ConfigError(f"device {device!r} is not on this machine ({have}); use --device auto or cpu")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r} is not on this machine (MPS is not available); use --device auto or cpu")
    return resolved


def device_name(device: torch.device) -> str:
    """How metrics.json names the machine a run's wall time was measured on."""
    import torch

    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def cpu_bf16() -> str:
    """Which bf16 arithmetic this CPU has: ``"amx"``, ``"avx512_bf16"`` or ``"emulated"``. Machines of
    one device name differ here: without either, bf16 is converted in software, several times slower,
    and rounds differently."""
    import torch

    caps = torch.cpu.get_capabilities()
    return "amx" if caps.get("amx_bf16") else "avx512_bf16" if caps.get("avx512_bf16") else "emulated"


@cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: CUDA devices that support it, CPUs with AMX or
    AVX512-BF16."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return cpu_bf16() != "emulated"
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where it is native on ``device``, else ``fp32``; an explicit choice as given."""
    if precision not in PRECISIONS:
        raise ConfigError(unknown("precision", [precision], PRECISIONS, quoted=True))
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def precision_warning(precision: str, device: torch.device) -> str | None:
    """The one warning an explicit bf16 gets on a CPU that emulates it (it still runs)."""
    if precision == "bf16" and device.type == "cpu" and cpu_bf16() == "emulated":
        return EMULATED_BF16_WARNING
    return None


def numeric_class(device: torch.device, precision: str) -> dict[str, Any]:
    """Everything about this process that can change a run's numbers for a fixed config and seed."""
    import torch

    found: dict[str, Any] = {"device_kind": device.type}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        found |= {"device_name": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}
    elif device.type == "cpu":
        found |= {"device_name": cpu_model(), "bf16": cpu_bf16(), "threads": torch.get_num_threads()}
    else:
        found |= {"device_name": str(device)}
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return found | {
        "precision": precision,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "cudnn": str(cudnn) if cudnn else None,
    }


# ---------------------------------------------------------------------- a stored run's class (no torch)
def run_precision(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The precision a stored run trained in: its recorded class, else its config (runs recorded
    before the class was always bf16 or fp32 in their config)."""
    recorded = (metrics.get("numeric_class") or {}).get("precision")
    return str(recorded or config.get("precision") or "auto")


def same_numeric_class(metrics: dict[str, Any], here: dict[str, Any]) -> bool:
    """Whether a stored run's recorded class is ``here`` (versions included); a run recorded before
    classes were kept matches on what it recorded (its CPU's bf16 arithmetic, where it has it)."""
    recorded = metrics.get("numeric_class")
    if recorded:
        return dict(recorded) == dict(here)
    return metrics.get("cpu_bf16", here.get("bf16")) == here.get("bf16")


def class_label(metrics: dict[str, Any], config: dict[str, Any] | None = None) -> str:
    """A stored run's numeric class in a few words: ``"CPU avx512_bf16 x1 fp32"``, ``"H200 bf16"``.
    Runs recorded before the class was kept show what they recorded (``bf16 ?`` where the CPU's bf16
    arithmetic is unknown)."""
    numeric = metrics.get("numeric_class") or {}
    precision = run_precision(config or {}, metrics)
    if numeric:
        if numeric.get("device_kind") == "cpu":
            return f"CPU {numeric.get('bf16', '?')} x{numeric.get('threads', '?')} {precision}"
        return f"{str(numeric.get('device_name', '?')).removeprefix('NVIDIA ')} {precision}"
    device = short_device(metrics.get("device"))
    if device.startswith("CPU"):
        kind, _, threads = device.partition(" ")
        return f"CPU {metrics.get('cpu_bf16', '?')} {threads} {precision}".replace("  ", " ")
    return f"{device} {precision}"


def short_device(names: str | None) -> str:
    """A run's ``metrics.json`` device, short: ``"cuda: NVIDIA H200"`` -> ``"H200"``,
    ``"cpu: x86_64 x1 threads"`` -> ``"CPU x1"``; several (seeds on different machines) joined by "/";
    a name without ``kind: `` as it is."""
    if not isinstance(names, str) or not names:
        return "—"
    short = []
    for name in names.split(" | "):
        if ": " not in name:  # short already (a benchmark's device: deepcls.numeric.target_device)
            short.append(name)
            continue
        kind, _, detail = name.partition(": ")
        if kind == "cuda":
            short.append(detail.removeprefix("NVIDIA ").strip())
        else:
            threads = next((w for w in detail.split() if w.startswith("x") and w[1:].isdigit()), "")
            short.append(f"{kind.upper()} {threads}".strip())
    return "/".join(dict.fromkeys(short))


def target_device(device: str = "auto", threads: int | None = None) -> str:
    """The short name of where runs would train here (``"H100"``, ``"CPU x1"``): on the CPU one thread
    per run unless ``threads`` says otherwise, as ``--jobs`` = cores trains them."""
    resolved = resolve_device(device)
    if resolved.type == "cpu":
        return f"CPU x{threads or 1}"
    return short_device(device_name(resolved))
