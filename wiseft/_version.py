"""The version of wiseft, in a module of its own so that any module can name it without importing the package's
front doors (``wiseft/__init__``)."""

__version__ = "0.1.0"
