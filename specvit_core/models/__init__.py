"""Every architecture of the paper behind one registry: ``build_model(name, size)``.

Importing this package registers all of them (transformer, hybrid, recurrent and CNN families).
"""
# Imported for their registration side effect, in the order list_models() reports.
from . import transformer, recurrent, hybrid, cnn  # noqa: F401, I001
from .registry import FAMILIES, SIZES, build_model, describe_models, list_models, n_params, register_model

__all__ = ["FAMILIES", "SIZES", "build_model", "describe_models", "list_models", "n_params", "register_model"]
