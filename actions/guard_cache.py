"""What the policy service keeps in memory: the suspended set (re-checked every second) and who owns a sender."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from actions.outbound import OwnerLookup, SenderOwner

log = structlog.get_logger("actions.guard_cache")

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Block:
    """An open ledger row that stops a sender: its case and the name the 550 says."""

    case_id: str | None
    name: str


@dataclass(frozen=True)
class BlockSet:
    """Every open suspension: mailbox/domain targets, stopped services, and the client IPs of those services."""

    targets: Mapping[str, Block] = field(default_factory=dict)
    services: Mapping[str, Block] = field(default_factory=dict)
    ips: Mapping[str, Block] = field(default_factory=dict)
    networks: tuple[tuple[Network, Block], ...] = ()

    def sender(self, identities: Iterable[str], service_ids: Iterable[str]) -> Block | None:
        """The block of a login, mailbox, its domain or any parent domain, or of a service it belongs to."""
        for identity in identities:
            if not identity:
                continue
            if identity in self.targets:
                return self.targets[identity]
            labels = identity.rpartition("@")[2].split(".")
            for i in range(len(labels) - 1):
                found = self.targets.get(".".join(labels[i:]))
                if found is not None:
                    return found
        for service_id in service_ids:
            if service_id in self.services:
                return self.services[service_id]
        return None

    def client(self, address: str) -> Block | None:
        """The block of a client IP that is a resource of a suspended service."""
        if not address or (not self.ips and not self.networks):
            return None
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return None
        found = self.ips.get(ip.compressed)
        if found is None:
            found = next((b for net, b in self.networks if ip.version == net.version and ip in net), None)
        return found


class Refreshed(Generic[T]):
    """A value loaded from the database, re-validated by a cheap version query at most every `ttl` seconds.

    Concurrent callers share one check; a changed version (or `full_every` seconds) reloads the value. When
    the check fails the last value is kept (a suspension in force stays in force during a database outage).
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        version: Callable[[], Awaitable[Hashable]],
        ttl: float,
        full_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._version, self.ttl, self.full_every, self._clock = load, version, ttl, full_every, clock
        self._value: T | None = None
        self._seen: Hashable = None
        self._checked = self._loaded = float("-inf")
        self._inflight: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._value is not None and self._clock() - self._checked < self.ttl:
            return self._value
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._inflight)

    async def _refresh(self) -> T:
        started = self._clock()
        try:
            version = await self._version()
            if self._value is None or version != self._seen or started - self._loaded >= self.full_every:
                self._value = await self._load()
                self._seen, self._loaded = version, started
            self._checked = started
            return self._value
        except Exception as exc:
            if self._value is None:
                raise
            log.warning("guard_cache.refresh_failed", error=repr(exc))
            return self._value
        finally:
            self._inflight = None


class OwnerCache:
    """mailbox or login -> SenderOwner, remembered `ttl` seconds (the inventory changes by import, rarely)."""

    def __init__(
        self, lookup: OwnerLookup, ttl: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lookup, self.ttl, self.max_entries, self._clock = lookup, ttl, max_entries, clock
        self._entries: dict[str, tuple[float, SenderOwner | None]] = {}

    async def get(self, key: str) -> SenderOwner | None:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        owner = await self._lookup(key)
        if self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, owner)
        return owner
