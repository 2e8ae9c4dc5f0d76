"""sgde: Semantic Gradient Descent for small language models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sgde")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
