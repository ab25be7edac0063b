"""Let a registry torchvision import beside the CPU build of torch (test and CPU images only).

The torchvision wheels on PyPI are CUDA builds. Beside ``torch==2.13.0+cpu`` their
C extension does not load, and ``import torchvision`` then fails inside its own
``register_fake("torchvision::nms")`` with ``operator torchvision::nms does not
exist``. vLLM's LLaVA code imports ``torchvision.transforms.v2.functional`` (through
transformers' Pixtral image processor), so vLLM cannot serve LLaVA there.

:func:`install_import_hook` puts a finder in front of the import system that, the
first time ``torchvision`` is imported, tries to load torchvision's C extension and,
only if that fails, defines the two operator schemas (``nms``, ``qnms``) torchvision
expects. Its pure-Python transforms then work; calling ``torchvision.ops.nms``
raises ``NotImplementedError`` (no kernel), which vLLM never does. Where the C
extension loads (a GPU image with a matching torchvision) nothing is defined.

vLLM spawns its engine and workers, so the hook must run at every interpreter start:
``python -m collectors.vllm.torchvision_cpu`` writes a one-line ``.pth`` file into the
current environment's site-packages (``--remove`` deletes it). Importing
``torchvision`` is the only thing that triggers torch's import.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import sysconfig
from pathlib import Path
from typing import Any

PTH_NAME = "vlm_monitor_torchvision_cpu.pth"
PTH_LINE = "import collectors.vllm.torchvision_cpu as _m; _m.install_import_hook()\n"
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: Any = None  # keeps the torch.library.Library (and its schemas) alive


def define_missing_schemas(extension: str | None) -> bool:
    """Define ``torchvision::nms`` and ``qnms`` unless torchvision's C extension loads.

    Parameters
    ----------
    extension : str or None
        Path of torchvision's ``_C`` shared library, when found.

    Returns
    -------
    bool
        True when the schemas were defined here (the extension did not load).
    """
    global _library
    import torch

    if extension is not None:
        try:
            torch.ops.load_library(extension)
            return False
        except (OSError, RuntimeError):
            pass
    if _library is None and not hasattr(torch.ops.torchvision, "nms"):
        _library = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            _library.define(schema)
        return True
    return False


class _TorchvisionFinder(importlib.abc.MetaPathFinder):
    """Runs :func:`define_missing_schemas` once, just before ``torchvision`` first imports."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.submodule_search_locations:
            extension = None
            for folder in spec.submodule_search_locations:
                found = sorted(Path(folder).glob("_C*.so"))
                extension = str(found[0]) if found else None
            define_missing_schemas(extension)
        return spec


def install_import_hook() -> None:
    """Add the finder to ``sys.meta_path`` (idempotent; no import of torch here)."""
    if not any(isinstance(f, _TorchvisionFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFinder())


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--remove`` delete) the ``.pth`` file in this environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="delete the .pth file")
    args = parser.parse_args(argv)
    target = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    if args.remove:
        target.unlink(missing_ok=True)
        print(f"removed {target}")
    else:
        target.write_text(PTH_LINE)
        print(f"wrote {target}: torchvision imports beside the CPU torch in this environment")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
