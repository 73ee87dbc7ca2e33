"""`paygate serve <service>`."""

from __future__ import annotations

import argparse

from paygate_runtime.serve import serve


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("service", choices=["session", "billing", "keys", "gateway"])


def run(args: argparse.Namespace) -> int:
    serve(args.service)
    return 0
