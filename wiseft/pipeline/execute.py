"""Execute one notebook with papermill, so that only a complete run ever has the notebook's normal name.

The executed copy is written to ``.<name>.running.ipynb`` beside its destination while cells run (papermill
saves after each cell, which helps to inspect a long step). On success it is renamed to ``<name>.ipynb``; on
failure to ``<name>.failed.ipynb`` and the error names the notebook, the cell and the exception. A run killed
mid-step leaves only the hidden ``.running`` file, which the next run overwrites.

The kernel's own stderr goes to ``.<name>.kernel.log`` beside it (kept when the step fails), not to the terminal:
when Ctrl-C stops a run, the kernel is shut down mid-cell and its messaging layer logs a ``ZMQError`` traceback
while it dies, which is noise after a clean interruption (the log keeps it, and anything else a dying kernel
says, for inspection).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..errors import PipelineError

log = logging.getLogger(__name__)

__all__ = ["execute_notebook", "resolve_kernel", "kernel_env", "executed_paths"]

_PYTHON_NAMES = {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


def executed_paths(dest: Path) -> tuple[Path, Path, Path]:
    """``(running, final, failed)`` paths for the executed copy whose final path is ``dest``."""
    stem = dest.name[: -len(".ipynb")] if dest.name.endswith(".ipynb") else dest.name
    return dest.with_name(f".{stem}.running.ipynb"), dest, dest.with_name(f"{stem}.failed.ipynb")


def resolve_kernel(name: str | None = None) -> str:
    """The Jupyter kernel to run notebooks with: ``name``, else ``$WISEFT_KERNEL``, else ``python3``.

    A kernelspec whose command is plain ``python`` runs the current interpreter (jupyter_client substitutes
    ``sys.executable``), which is what the pipeline wants: the kernels then see the same packages as ``wiseft``.

    Raises:
        PipelineError: when no such kernel is installed, saying how to install one.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = name or os.environ.get("WISEFT_KERNEL") or "python3"
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel as e:
        raise PipelineError(f"no Jupyter kernel named {name!r}; install one for this interpreter with "
                            f"`{sys.executable} -m ipykernel install --sys-prefix`, or choose one with --kernel "
                            "(see `jupyter kernelspec list`)") from e
    argv0 = spec.argv[0] if spec.argv else ""
    if argv0 not in _PYTHON_NAMES and Path(argv0).resolve() != Path(sys.executable).resolve():
        log.warning("kernel %r runs %s, not this interpreter (%s); its notebooks may not see wiseft", name, argv0,
                    sys.executable)
    return name


@contextlib.contextmanager
def kernel_env() -> Iterator[None]:
    """Environment for the kernels: ``wiseft`` importable from its source tree, and no progress bars.

    Kernels inherit the environment of the process that starts them; the previous values are restored after.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "WISEFT_PROGRESS", "WISEFT_BATCH")}
    paths = [p for p in (saved["PYTHONPATH"] or "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([package_root, *[p for p in paths if p != package_root]])
    os.environ.setdefault("WISEFT_PROGRESS", "0")
    os.environ["WISEFT_BATCH"] = "1"  # interactive widgets (the α explorer) print a line instead of a widget
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _ShutdownNoise(logging.Filter):
    """Drop asyncio's "Task exception was never retrieved" for a kernel that wiseft itself shut down."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (type(exc).__name__ == "DeadKernelError" and "never retrieved" in record.getMessage())


_shutdown_noise = _ShutdownNoise()


def _kernel_manager_logging_to(log: Any) -> type:
    """The pipeline's (encrypted) kernel manager, whose kernels write their stderr to the open file ``log``."""
    from .kernels import EncryptedAsyncKernelManager

    class KernelLoggingToFile(EncryptedAsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.setdefault("stderr", log)
            await super()._async_launch_kernel(kernel_cmd, **kw)

    return KernelLoggingToFile


def _failed_cell(source: Path, cell_index: int, cell_source: str) -> tuple[int, str]:
    """The failing cell's 1-based position in the *source* notebook and its first line.

    papermill's index counts the injected parameters cell, so the cell is looked up by its source text and
    only falls back to the shifted index when the text is ambiguous.
    """
    import nbformat

    lines = (cell_source or "").strip().splitlines()
    first = lines[0] if lines else ""
    try:
        nb = nbformat.read(source, as_version=4)
    except Exception:  # noqa: BLE001 - best effort: the message is still useful without the position
        return cell_index + 1, first
    matches = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source == cell_source]
    if len(matches) == 1:
        return matches[0] + 1, first
    has_parameters = any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    shift = 1 if has_parameters or cell_index > 0 else 0
    return cell_index - shift + 1, first


def execute_notebook(source: Path, dest: Path, parameters: Mapping[str, Any], *, kernel_name: str,
                     cwd: Path | None = None, step: str = "", log_output: bool = False,
                     engine_kwargs: Mapping[str, Any] | None = None) -> Path:
    """Run ``source`` with ``parameters`` injected; return ``dest`` once the executed copy is complete.

    ``engine_kwargs`` go to papermill's notebook client (``km``: a kernel manager whose running kernel is used
    instead of starting one, see :class:`~wiseft.pipeline.warm.WarmKernel`).

    Raises:
        PipelineError: naming the step, the notebook, the failing cell (1-based, its first line) and the
            exception; attributes ``step``, ``notebook``, ``cell``, ``ename``, ``evalue``, ``failed_notebook``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    running, final, failed = executed_paths(dest)
    final.parent.mkdir(parents=True, exist_ok=True)
    running.unlink(missing_ok=True)
    logging.getLogger("asyncio").addFilter(_shutdown_noise)
    kernel_log = running.with_name(running.name.replace(".running.ipynb", ".kernel.log"))
    try:
        with kernel_env(), open(kernel_log, "wb") as log_fh:
            papermill.execute_notebook(str(source), str(running), parameters=dict(parameters),
                                       kernel_name=kernel_name, cwd=str(cwd) if cwd else None, progress_bar=False,
                                       log_output=log_output, report_mode=False,
                                       kernel_manager_class=_kernel_manager_logging_to(log_fh),
                                       **dict(engine_kwargs or {}))
    except PapermillExecutionError as e:
        _keep_failed(running, final, failed)
        cell, first = _failed_cell(source, e.cell_index, e.source)
        err = PipelineError(
            f"step '{step}': notebook {source} failed in cell {cell}"
            + (f" (`{first}`)" if first else "") + f": {e.ename}: {e.evalue}\n"
            f"The executed copy with the traceback is {failed}; outputs of earlier steps are kept. "
            "Fix the cause and rerun: finished steps are skipped.")
        err.step, err.notebook, err.cell, err.ename, err.evalue = step, source, cell, e.ename, e.evalue
        err.failed_notebook = failed
        raise err from None
    except BaseException as e:
        _keep_failed(running, final, failed)
        if not isinstance(e, Exception):
            raise  # KeyboardInterrupt / SystemExit: the partial copy is kept as .failed for inspection
        err = PipelineError(f"step '{step}': notebook {source} could not be executed: {type(e).__name__}: {e}"
                            + (f"\nThe partial executed copy is {failed}." if failed.exists() else "")
                            + f"\nWhat the kernel wrote to stderr is in {kernel_log}.")
        err.step, err.notebook, err.cell, err.ename, err.evalue = step, source, None, type(e).__name__, str(e)
        err.failed_notebook = failed if failed.exists() else None
        raise err from e
    with open(running, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(running, final)
    failed.unlink(missing_ok=True)
    kernel_log.unlink(missing_ok=True)  # kept only when a step fails or is interrupted
    return final


def _keep_failed(running: Path, final: Path, failed: Path) -> None:
    """Move the partial executed copy to ``.failed.ipynb`` and drop a stale complete copy of an older run."""
    if running.exists():
        os.replace(running, failed)
    final.unlink(missing_ok=True)
