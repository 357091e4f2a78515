"""How the report's kernels are started and stopped: quietly, on a healthy run.

jupyter_client stops a kernel by first interrupting it (SIGINT to its process group), then asking it to
shut down. A notebook that finished runs nothing to interrupt, but the signal can land while the kernel
completes its last message, and ipykernel then logs "KeyboardInterrupt caught in kernel" at ERROR: noise
on a healthy run. :class:`FinishedKernelManager` skips only that interrupt, so nothing the kernel says
is hidden; a kernel that does not stop when asked is still terminated, then killed, by jupyter_client.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager

# The kernel listens on loopback only; its "running over TCP without encryption" warning, once per
# notebook, would bury the console's progress and outcomes. Its errors still show.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)


class FinishedKernelManager(AsyncKernelManager):
    """A kernel manager whose shutdown does not interrupt the kernel first (papermill passes it to nbclient
    as ``kernel_manager_class``); interrupts asked for while the kernel runs are sent as usual."""

    async def _async_interrupt_kernel(self) -> None:
        if self.shutting_down:  # set by shutdown_kernel: the notebook is done, a shutdown request follows
            return
        await super()._async_interrupt_kernel()
