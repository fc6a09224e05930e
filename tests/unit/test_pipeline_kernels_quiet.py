"""Kernel starts are quiet: the pipeline's and nbval's kernels get CurveZMQ keys, so ipykernel has no
plain-text-TCP warning to print (the warning went to the terminal on every step of every run)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from wiseft.pipeline.execute import execute_notebook
from wiseft.pipeline.kernels import EncryptedKernelManager

WARNING = "running over TCP without encryption"


def test_pipeline_kernel_starts_without_the_plain_tcp_warning(tmp_path: Path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "a.ipynb")
    out = execute_notebook(tmp_path / "a.ipynb", tmp_path / "b.ipynb", {}, kernel_name="python3")
    assert nbformat.read(out, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    err = capfd.readouterr().err
    assert WARNING not in err, err


@pytest.mark.parametrize("manager, expect_keys", [(EncryptedKernelManager, True), (KernelManager, False)])
def test_the_managers_provision_curve_keys_where_plain_ones_do_not(manager, expect_keys):
    km = manager(kernel_name="python3")
    km.start_kernel()
    try:
        info = km.get_connection_info()
        assert ("curve_secretkey" in info and info["curve_secretkey"] is not None) == expect_keys
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
