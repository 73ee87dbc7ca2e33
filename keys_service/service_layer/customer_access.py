"""A paid session's customer access in one go: its customer key and its access link, for many sessions at once.

The fulfilment dispatcher asks for a whole pass of sessions in one IssueCustomerAccess call (issue 16). Each item
is written by the same code as the single IssueCustomerKey and IssueAccessToken calls (CustomerKeyService and
AccessTokenService `write_issue`), so a session gets one key and one token however it was asked, and a retry,
single or batched, gets them back. The items share one transaction when no statement fails: one commit for
the pass instead of two per session. If one fails, the group rolls back whole and each item is tried on its
own, so one bad item gets its error and the others are issued.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from keys_service.adapters.api_key_repository import StoredApiKey
from keys_service.domain.api_keys import KeyMode
from keys_service.service_layer.access_links import AccessLink, AccessTokenService, PreparedToken
from keys_service.service_layer.customer_keys import CustomerKeyService, PreparedKey
from keys_service.service_layer.known_merchants import KnownMerchants
from paygate_runtime.errors import DomainError, InvalidArgument

# Items of one call: a dispatcher pass claims at most its concurrency (64 by default).
MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class AccessRequest:
    merchant_id: str
    session_id: str
    mode: KeyMode
    metadata: Mapping[str, str] = field(default_factory=dict)
    scopes: Sequence[str] | None = None  # None: not given, the default grant ["*"]
    customer_email: str = ""

    def __repr__(self) -> str:  # never the customer's email in a log line
        return f"AccessRequest(session_id={self.session_id!r})"


@dataclass(frozen=True, slots=True)
class CustomerAccess:
    key: StoredApiKey
    link: AccessLink
    merchant_name: str


@dataclass(frozen=True, slots=True)
class _Prepared:
    key: PreparedKey
    token: PreparedToken


class CustomerAccessService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        customer_keys: CustomerKeyService,
        access: AccessTokenService,
        merchants: KnownMerchants,
    ) -> None:
        self.pool = pool
        self.customer_keys = customer_keys
        self.access = access
        self.merchants = merchants

    async def issue_many(self, requests: Sequence[AccessRequest]) -> list[CustomerAccess | Exception]:
        """Each session's key and link, in order; an item's DomainError (or database error) in its place."""
        if not 1 <= len(requests) <= MAX_BATCH:
            raise InvalidArgument("invalid_batch_size", f"1 to {MAX_BATCH} items are required", field="items")
        results: list[CustomerAccess | Exception | None] = [None] * len(requests)
        todo: list[tuple[int, _Prepared]] = []
        for index, request in enumerate(requests):
            try:
                todo.append((index, await self._prepare(request)))
            except DomainError as error:
                results[index] = error
        if todo:
            # One order of sessions for every batch: two concurrent batches wait for each other's rows rather
            # than deadlock.
            todo.sort(key=lambda item: item[1].key.session_id)
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    grouped: list[tuple[int, CustomerAccess | Exception]] = []
                    for index, prepared in todo:
                        try:
                            grouped.append((index, await self._write(conn, prepared)))
                        except DomainError as error:
                            # Refused after reads only (another merchant's or mode's session): intact.
                            grouped.append((index, error))
                for index, outcome in grouped:
                    results[index] = outcome
            except asyncpg.PostgresError:
                for index, prepared in todo:
                    try:
                        results[index] = await self._write(self.pool, prepared)
                    except (DomainError, asyncpg.PostgresError) as error:
                        results[index] = error
        return [r if r is not None else RuntimeError("not issued") for r in results]

    async def _prepare(self, request: AccessRequest) -> _Prepared:
        key = await self.customer_keys.prepare_issue(
            merchant_id=request.merchant_id,
            session_id=request.session_id,
            mode=request.mode,
            metadata=request.metadata,
            scopes=request.scopes,
        )
        token = await self.access.prepare_issue(
            merchant_id=request.merchant_id,
            session_id=request.session_id,
            mode=request.mode,
            customer_email=request.customer_email,
        )
        return _Prepared(key, token)

    async def _write(self, conn: asyncpg.Connection | asyncpg.Pool, prepared: _Prepared) -> CustomerAccess:
        # Key first, then the token: the portal behind the link leads to that key.
        key = await self.customer_keys.write_issue(conn, prepared.key)
        token = await self.access.write_issue(conn, prepared.token)
        # A link the merchant revoked meanwhile comes back as it is (its access_token carries revoked_at), as
        # IssueAccessToken returns the revoked token: the caller decides, and the portal refuses it anyway.
        name = await self.merchants.name(uuid.UUID(key.merchant_id))
        return CustomerAccess(key, self.access.link_for(token), name)
