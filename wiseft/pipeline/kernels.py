"""Kernel managers whose kernels talk to the pipeline over encrypted sockets.

A Jupyter kernel started over TCP without CurveZMQ keys warns on every start that anyone on the machine could
read its traffic. jupyter_client can provision a fresh CurveZMQ key pair per kernel when the kernelspec declares
``supported_encryption: curve`` (ipykernel's does); it only does so when the manager's ``transport_encryption``
policy asks for it, and the default policy is "disabled". The managers here default to "auto", so the
pipeline's kernels (papermill) and the test kernels (nbval, via ``notebooks/conftest.py``) are encrypted and
start quietly. JupyterLab gets the same policy from the Jupyter config that ``scripts/bootstrap.sh`` installs.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager, KernelManager
from traitlets import default

__all__ = ["EncryptedAsyncKernelManager", "EncryptedKernelManager", "ENCRYPTION_POLICY"]

#: jupyter_client's transport-encryption policy for our kernels: keys when the kernelspec supports them.
ENCRYPTION_POLICY = "auto"


class EncryptedAsyncKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` (papermill's, through nbclient) with per-kernel CurveZMQ keys."""

    @default("transport_encryption")
    def _transport_encryption_default(self) -> str:
        return ENCRYPTION_POLICY


class EncryptedKernelManager(KernelManager):
    """Blocking ``KernelManager`` (nbval's) with per-kernel CurveZMQ keys."""

    @default("transport_encryption")
    def _transport_encryption_default(self) -> str:
        return ENCRYPTION_POLICY
