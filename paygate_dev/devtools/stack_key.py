"""What a dev command says when the gateway refuses stack.json's merchant key (HTTP 401).

`paygate up` writes the stack's test merchant key to $PAYGATE_HOME/stack.json. Once that key is rolled (its
grace period over) or revoked, through the merchant API or `paygate merchant keys`, every call with it answers
401; `paygate demo` and `paygate pay` then say so in one line and how to get a working key, never the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paygate_runtime.stack import paygate_home


def stale_key_message(stack: dict[str, Any], home: Path | None = None) -> str:
    """One line for a 401 answered to stack.json's merchant key (names no secret)."""
    path = (home or paygate_home()) / "stack.json"
    merchant_id = str((stack.get("merchant") or {}).get("id") or "<merchant id>")
    return (
        f"the merchant key in {path} no longer works (HTTP 401: it was rolled or revoked). "
        "Restart `paygate up` to give the stack a working test key, or make one with "
        f"`paygate merchant keys create --merchant {merchant_id} --mode test` and put it in stack.json's "
        "merchant.api_key"
    )
