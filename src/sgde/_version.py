"""The package version: the single source (``pyproject.toml`` reads it through hatch).

A module of its own so that any layer can name the version without importing the top-level
``sgde`` package (and without the cost of :mod:`importlib.metadata` at start-up).
"""

__version__ = "0.1.0"
