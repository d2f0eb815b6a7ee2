"""infscale: inference-efficient scaling laws, from a shape grid to the chosen model."""

__version__ = "0.1.0"
