"""CUDA graphs for the training step and the evaluation pass.

On a GPU the report's runs are tiny (ResNet-18 with the 7x7 stem on 32x32 images is 37 M MACs
forward), so a step costs its kernel launches rather than its arithmetic. A step captured once as
a CUDA graph replays all of its kernels with one launch. The device-resident loader gives every
full batch the same shape, so one graph serves them all; the last, partial batch of an epoch runs
eagerly through the same model and optimizer (the same math, not a padded or dropped batch).

What the captured step reads has to stay at fixed addresses: the inputs are static tensors the
batch is copied into, and the learning rate is a device tensor the schedule fills before each
step (``Trainer.set_lr``). Capture needs warm-up steps (cuDNN picks its kernels, the optimizer
creates its state); those would train the model, so the model, the optimizer state and the RNG
are put back exactly as they were before the first real step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

WARMUP_CALLS = 2  # eager calls on a side stream before capture (cuDNN autotuning, optimizer state)

# The optimizer is built capturable for the graph; its eager steps (warm-up, partial batches) are fine.
warnings.filterwarnings("ignore", message="This instance was constructed with capturable=True")


def use_graphs(requested: bool | None, device: torch.device, compiled: bool = False) -> bool:
    """Whether a run captures CUDA graphs: as requested, else (None) on CUDA unless compiled."""
    if requested is None:
        return device.type == "cuda" and not compiled
    return requested


class Graphed:
    """``fn(*inputs)`` captured as a CUDA graph on the first call and replayed on later calls with
    inputs of the same shapes. The outputs are static tensors, overwritten by the next replay:
    use them (on the same stream) before calling again. ``keep`` wraps warm-up and capture
    (e.g. :func:`state_kept`)."""

    def __init__(
        self,
        fn: Callable[..., tuple[torch.Tensor, ...]],
        keep: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.fn, self.keep = fn, keep
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: list[torch.Tensor] = []
        self.outputs: tuple[torch.Tensor, ...] = ()

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.graph is None:
            with self.keep() if self.keep is not None else nullcontext():
                self.capture(inputs)
        for static, x in zip(self.inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return self.outputs

    def capture(self, inputs: tuple[torch.Tensor, ...]) -> None:
        self.inputs = [x.clone() for x in inputs]  # clone keeps channels_last strides
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self.fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.outputs = self.fn(*self.inputs)
        self.graph = graph


@contextmanager
def state_kept(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Undo what warm-up steps did: weights, buffers (BN statistics), optimizer state and the CUDA
    RNG are copied back in place (the graph holds their addresses). Optimizer state created during
    warm-up is zeroed: Adam's fresh moments and step count are zeros, and SGD's first step with a
    zero momentum buffer computes what its first step without one does (buf = grad)."""
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {p: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)} for p, s in optimizer.state.items()}
    cuda = next(model.parameters()).is_cuda
    rng = torch.cuda.get_rng_state() if cuda else torch.get_rng_state()
    yield
    with torch.no_grad():
        for k, v in model.state_dict().items():
            v.copy_(weights[k])
        for p, s in optimizer.state.items():
            for k, v in s.items():
                if torch.is_tensor(v):
                    v.copy_(moments[p][k]) if k in moments.get(p, {}) else v.zero_()
    torch.cuda.set_rng_state(rng) if cuda else torch.set_rng_state(rng)
