"""scripts/dev.py (README's two commands) loaded as a module, fresh each time, so a test can monkeypatch it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DEV = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"


def load_dev_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paygate_dev_script", DEV)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
