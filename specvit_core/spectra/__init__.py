"""Stellar templates: the embedded line model, the BOSZ reader and grid interpolation."""
from .embedded import embedded_grid
from .grid import load_grid
from .templates import AXES, BOSZ_AXES, TemplateGrid

__all__ = ["AXES", "BOSZ_AXES", "TemplateGrid", "embedded_grid", "load_grid"]
