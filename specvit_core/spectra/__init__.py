"""Stellar templates: the embedded line model, the BOSZ reader and grid interpolation."""
from .grid import AXES, BOSZ_AXES, TemplateGrid, embedded_grid, load_grid

__all__ = ["AXES", "BOSZ_AXES", "TemplateGrid", "embedded_grid", "load_grid"]
