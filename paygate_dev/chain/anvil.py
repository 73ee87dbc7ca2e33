"""Run a real local Ethereum node (anvil, from the npm package `@foundry-rs/anvil`) as a child process.

Used by `paygate up --chain` and by the chain integration tests. The binary is the one the project
installs itself with `npm ci` (package-lock.json pins it), so nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import sys
from collections import deque
from collections.abc import Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN_ENV = "PAYGATE_ANVIL_BIN"
DEFAULT_CHAIN_ID = 31337

# anvil's own default mnemonic: its ten dev accounts are derived from it and each holds 10 000 ETH.
# Deposit addresses must never come from it (see session_service.domain.deposit_addresses.DEV_MNEMONIC).
ANVIL_DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"

_LISTENING = re.compile(r"Listening on (?P<host>[\w.:\[\]-]+):(?P<port>\d+)")
_NPM_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilError(RuntimeError):
    """anvil is missing, did not start, or stopped answering."""


def find_anvil_binary(repo_root: Path | None = None) -> Path:
    """Locate anvil: $PAYGATE_ANVIL_BIN, else the npm-installed copy under <repo>/node_modules.

    The native binary from the platform package is preferred over `node_modules/.bin/anvil`: the latter
    is a Node wrapper that spawns the native binary, so a signal sent to it reaches anvil only second hand
    and a SIGKILL would orphan the node.
    """
    override = os.environ.get(ANVIL_BIN_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AnvilError(f"{ANVIL_BIN_ENV}={override} is not an executable file")
        return path
    roots = [repo_root] if repo_root else [REPO_ROOT, Path.cwd()]
    exe = "anvil.exe" if sys.platform == "win32" else "anvil"
    arch = _NPM_ARCH.get(platform.machine().lower(), platform.machine().lower())
    for root in roots:
        modules = root / "node_modules"
        for candidate in (
            modules / "@foundry-rs" / f"anvil-{sys.platform}-{arch}" / "bin" / exe,
            modules / ".bin" / exe,
        ):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    raise AnvilError(
        f"anvil not found under {', '.join(str(r / 'node_modules') for r in roots)}; "
        f"run `npm ci` in the repository root or set {ANVIL_BIN_ENV}"
    )


@dataclass
class AnvilProcess:
    """A running anvil node. Use `async with start_anvil() as anvil:` or `await anvil.stop()`."""

    process: asyncio.subprocess.Process
    rpc_url: str
    port: int
    chain_id: int
    accounts: list[str] = field(default_factory=list)
    _output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    _drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def funded_account(self) -> str:
        """The first dev account: unlocked, so `eth_sendTransaction` from it needs no key."""
        return self.accounts[0]

    def recent_output(self) -> str:
        """anvil's last log lines, for error messages when a test or `paygate up` fails."""
        return "\n".join(self._output)

    async def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One raw JSON-RPC call (for anvil_* / evm_* methods that web3 has no wrapper for)."""
        return await _rpc(self.rpc_url, method, list(params))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if anvil has not exited within `grace_seconds`. Idempotent."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace_seconds)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None

    async def __aenter__(self) -> AnvilProcess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def start_anvil(
    port: int = 0,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_time: float | None = None,
    *,
    host: str = "127.0.0.1",
    binary: Path | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30.0,
) -> _AnvilStart:
    """Start anvil; returns once its JSON-RPC answers with the right chain id.

    Both `anvil = await start_anvil()` (then `await anvil.stop()`) and `async with start_anvil() as anvil:`
    work. `port=0` lets anvil pick a free port itself (read back from its "Listening on" line), which avoids
    the bind race of probing for a free port first. `block_time=None` mines one block per transaction.
    """
    return _AnvilStart(
        _start_anvil(port, chain_id, block_time, host, binary, tuple(extra_args), startup_timeout)
    )


class _AnvilStart:
    def __init__(self, starting: Coroutine[Any, Any, AnvilProcess]) -> None:
        self._starting = starting
        self._anvil: AnvilProcess | None = None

    def __await__(self) -> Generator[Any, None, AnvilProcess]:
        return self._starting.__await__()

    async def __aenter__(self) -> AnvilProcess:
        self._anvil = await self._starting
        return self._anvil

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._anvil is not None:
            await self._anvil.stop()


async def _start_anvil(
    port: int,
    chain_id: int,
    block_time: float | None,
    host: str,
    binary: Path | None,
    extra_args: Sequence[str],
    startup_timeout: float,
) -> AnvilProcess:
    exe = binary or find_anvil_binary()
    args = [str(exe), "--host", host, "--port", str(port), "--chain-id", str(chain_id)]
    if block_time is not None:
        args += ["--block-time", _format_seconds(block_time)]
    args += list(extra_args)
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its own session: a Ctrl-C in the terminal goes to `paygate up`, which then stops anvil in order.
        start_new_session=True,
    )
    output: deque[str] = deque(maxlen=200)
    try:
        bound_port = await asyncio.wait_for(_read_until_listening(process, output), startup_timeout)
    except BaseException as exc:
        # Also on cancellation: a half-started anvil must not outlive the caller.
        await _kill(process)
        if isinstance(exc, Exception):
            reason = str(exc) or "timed out"
            raise AnvilError(f"anvil did not start: {reason}\n" + "\n".join(output)) from exc
        raise
    anvil = AnvilProcess(
        process=process, rpc_url=f"http://{host}:{bound_port}", port=bound_port, chain_id=chain_id
    )
    anvil._output = output
    anvil._drain = asyncio.create_task(_drain_output(process, output))
    try:
        await asyncio.wait_for(_wait_until_answering(anvil), startup_timeout)
    except BaseException as exc:
        await anvil.stop()
        if isinstance(exc, Exception):
            reason = str(exc) or "timed out"
            raise AnvilError(f"anvil started but its JSON-RPC did not answer: {reason}") from exc
        raise
    return anvil


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


async def _read_until_listening(process: asyncio.subprocess.Process, output: deque[str]) -> int:
    assert process.stdout is not None
    while True:
        raw = await process.stdout.readline()
        if not raw:
            raise AnvilError(f"anvil exited with code {await process.wait()}")
        line = raw.decode(errors="replace").rstrip()
        output.append(line)
        match = _LISTENING.search(line)
        if match:
            return int(match.group("port"))


async def _drain_output(process: asyncio.subprocess.Process, output: deque[str]) -> None:
    # anvil logs every request; if nobody reads the pipe it fills and anvil blocks.
    assert process.stdout is not None
    while raw := await process.stdout.readline():
        output.append(raw.decode(errors="replace").rstrip())


async def _wait_until_answering(anvil: AnvilProcess) -> None:
    while True:
        if anvil.process.returncode is not None:
            raise AnvilError(f"anvil exited with code {anvil.process.returncode}")
        try:
            chain_id = int(await anvil.rpc("eth_chainId"), 16)
            anvil.accounts = [_checksum(a) for a in await anvil.rpc("eth_accounts")]
        except (aiohttp.ClientError, OSError, AnvilError):
            await asyncio.sleep(0.05)
            continue
        if chain_id != anvil.chain_id:
            raise AnvilError(f"anvil answers chain id {chain_id}, expected {anvil.chain_id}")
        return


async def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as resp,
    ):
        reply = await resp.json(content_type=None)
    if "error" in reply:
        raise AnvilError(f"{method} failed: {reply['error']}")
    return reply["result"]


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _checksum(address: str) -> str:
    # web3.py refuses lower-case addresses as tx fields; anvil's eth_accounts returns them lower-case.
    from web3 import Web3

    return Web3.to_checksum_address(address)
