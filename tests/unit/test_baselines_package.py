"""The package front door of wiseft.baselines."""

from __future__ import annotations


def test_package_exports_the_public_api():
    import wiseft.baselines as B

    assert B.__all__ and all(hasattr(B, name) for name in B.__all__)
