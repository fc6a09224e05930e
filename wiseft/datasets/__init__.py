"""Datasets of the paper behind one registry, and the evaluation types they share with the engine."""

from .base import EvalSet, Protocol, top1

__all__ = ["EvalSet", "Protocol", "top1"]
