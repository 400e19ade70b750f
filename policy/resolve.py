"""Name resolution for evidence checks, behind an interface: pinned hosts first, then the system resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol


class Resolver(Protocol):
    """Addresses a host name resolves to (empty when it does not)."""

    async def resolve(self, host: str) -> list[str]: ...


class StaticResolver:
    """Answers from a table (configuration `trust.hosts`, tests); knows nothing else."""

    def __init__(self, hosts: dict[str, list[str]]) -> None:
        self.hosts = {k.lower().rstrip("."): list(v) for k, v in hosts.items()}

    async def resolve(self, host: str) -> list[str]:
        return list(self.hosts.get(host.lower().rstrip("."), []))


class SystemResolver:
    """The pinned table, then getaddrinfo with a timeout (never blocks the event loop)."""

    def __init__(self, hosts: dict[str, list[str]] | None = None, timeout: float = 3.0, enabled: bool = True) -> None:
        self.static = StaticResolver(hosts or {})
        self.timeout = timeout
        self.enabled = enabled

    async def resolve(self, host: str) -> list[str]:
        pinned = await self.static.resolve(host)
        if pinned or not self.enabled:
            return pinned
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), self.timeout)
        except (OSError, TimeoutError, UnicodeError):
            return []
        out = []
        for info in infos:
            try:
                out.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]).compressed)
            except ValueError:
                continue
        return sorted(set(out))
