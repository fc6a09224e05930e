"""One Jupyter kernel for every notebook of a run: the same notebooks, without a kernel start per notebook.

Starting a kernel and importing torch, open_clip, pandas and matplotlib costs about 5 s per notebook on two
cores, which dominates a rehearsal (dozens of notebooks of a second's work each). :class:`WarmKernel` starts one
kernel, and before each notebook clears its namespace (``%reset -f``) and closes its figures, so a notebook
sees none of the previous one's variables, only its already-imported modules. papermill then executes the
notebook against that kernel exactly as it would against a fresh one (parameters cell, outputs, errors).

Example:
    >>> with WarmKernel("python3") as executor:                                        # doctest: +SKIP
    ...     run_pipeline(profile, out_dir="runs/x", executor=executor)
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import PipelineError
from .execute import execute_notebook, kernel_env, resolve_kernel

log = logging.getLogger(__name__)

__all__ = ["WarmKernel", "RESET_CODE"]

#: Run in the kernel before each notebook: lift an early stop (``wiseft.notebook.stop_if``), forget the previous
#: notebook's variables and its cells (``In``: a stop lets the cells already in it run), close its figures.
RESET_CODE = ("import sys as _sys\n"
              "if 'wiseft.notebook' in _sys.modules:\n"
              "    _sys.modules['wiseft.notebook'].stop_if(None)\n"
              "%reset -f\n"
              "_hm = get_ipython().history_manager\n"
              "_hm.input_hist_parsed[:] = ['']\n_hm.input_hist_raw[:] = ['']\n"
              "import matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt, _hm\n")


def _lock_share_code() -> str:
    """Code that hands the kernel the run-folder lock this process holds *now*: the shared kernel outlives the
    lock it was started under (a suite's member folder), and the next notebook may write another folder (the
    suite's own, for a suite figure)."""
    from ..locks import LOCK_ENV

    return f"import os as _os\n_os.environ[{LOCK_ENV!r}] = {os.environ.get(LOCK_ENV, '')!r}\ndel _os\n"


class _DropClientTeardownNoise(logging.Filter):
    """papermill's client of a kernel it does not own leaves its zmq context to the garbage collector, which
    warns; the kernel and its sockets are closed by :meth:`WarmKernel.__exit__`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Could not destroy zmq context")


class WarmKernel:
    """An executor for :func:`~wiseft.pipeline.run_pipeline` that keeps one kernel for all notebooks.

    Args:
        kernel_name: the Jupyter kernel (default :func:`~wiseft.pipeline.execute.resolve_kernel`).
        cwd: the kernel's working directory.
    """

    def __init__(self, kernel_name: str | None = None, cwd: str | Path | None = None):
        self.kernel_name = resolve_kernel(kernel_name)
        self.cwd = str(cwd) if cwd is not None else None
        self.km = None
        self.notebooks = 0
        self._quiet = _DropClientTeardownNoise()

    def __enter__(self) -> "WarmKernel":
        from jupyter_core.utils import run_sync

        from .kernels import EncryptedAsyncKernelManager

        self.km = EncryptedAsyncKernelManager(kernel_name=self.kernel_name)  # as execute_notebook's own kernels
        with kernel_env():
            run_sync(self.km.start_kernel)(cwd=self.cwd)
        logging.getLogger("traitlets").addFilter(self._quiet)
        return self

    def __exit__(self, *exc: Any) -> None:
        from jupyter_core.utils import run_sync

        if self.km is not None and self.km.has_kernel:
            run_sync(self.km.shutdown_kernel)(now=True)
        self.km = None
        gc.collect()  # the clients' zmq contexts go now, while their teardown warning is still filtered
        logging.getLogger("traitlets").removeFilter(self._quiet)

    def _alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return self.km is not None and bool(run_sync(self.km.is_alive)())

    def _reset(self) -> None:
        """Run :data:`RESET_CODE` and wait for its reply on the shell channel (no ``wait_for_ready``: zmq queues
        the request until the channel is connected, and the reply comes once the kernel has run it)."""
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient()
        kc.load_connection_info(self.km.get_connection_info())
        kc.start_channels(iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = kc.execute(RESET_CODE + _lock_share_code(), silent=True, store_history=False)
            while True:
                reply = kc.get_shell_msg(timeout=120)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        finally:
            kc.stop_channels()
        if reply["content"].get("status") != "ok":
            raise PipelineError(f"the shared notebook kernel could not be reset before the next notebook: "
                                f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")

    def __call__(self, source: Path, dest: Path, parameters: Mapping[str, Any], *, kernel_name: str,
                 cwd: Path | None = None, step: str = "") -> Path:
        if not self._alive():
            raise PipelineError(f"step '{step}': the shared notebook kernel is not running (it died during an earlier "
                                "notebook?); rerun: finished steps are skipped")
        self._reset()
        self.notebooks += 1
        return execute_notebook(source, dest, parameters, kernel_name=self.kernel_name, cwd=cwd, step=step,
                                engine_kwargs={"km": self.km})
