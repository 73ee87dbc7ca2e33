"""Associated-data contexts of the keys service's sealed secrets (paygate_runtime.crypto.secret_box).

The value is part of every blob's authentication: changing it makes every stored blob unreadable.
"""

from __future__ import annotations

CUSTOMER_KEY_SECRET_CONTEXT = b"paygate.keys.customer_key_secret.v1"
