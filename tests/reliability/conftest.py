"""Fixtures of the reliability suite (the shared tiny model comes from ``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_registry():
    """Forget datasets a test registered from its own YAML files."""
    from wiseft.datasets import registry

    yield
    registry._reset_registry()
