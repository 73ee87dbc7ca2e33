"""`paygate serve <service>`."""

from __future__ import annotations

import argparse

from paygate_runtime.serve import serve


def run(args: argparse.Namespace) -> int:
    serve(args.service)
    return 0
