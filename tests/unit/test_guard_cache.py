"""The policy service's suspended set: re-checked by version at most every ttl, kept through a database outage."""

from __future__ import annotations

import asyncio

import pytest

from actions.guard_cache import Block, BlockSet, Refreshed


class Source:
    def __init__(self) -> None:
        self.version, self.loads, self.checks, self.down = 1, 0, 0, False
        self.now = 0.0

    async def load(self) -> BlockSet:
        self.loads += 1
        return BlockSet(targets={"a@x.example": Block("K1", "x.example")} if self.version > 1 else {})

    async def get_version(self) -> int:
        self.checks += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("database down")
        return self.version


async def test_a_new_suspension_is_seen_after_the_ttl_and_concurrent_callers_share_one_check() -> None:
    src = Source()
    cache = Refreshed(src.load, src.get_version, ttl=1.0, clock=lambda: src.now)
    assert (await cache.get()).sender(["a@x.example"], []) is None
    src.version = 2
    src.now = 0.5
    assert (await cache.get()).sender(["a@x.example"], []) is None  # within the ttl: no query at all
    assert src.checks == 1
    src.now = 1.5
    results = await asyncio.gather(*(cache.get() for _ in range(10)))
    assert all(r.sender(["a@x.example"], []) == Block("K1", "x.example") for r in results)
    assert (src.checks, src.loads) == (2, 2)


async def test_the_last_suspended_set_is_kept_when_the_check_fails() -> None:
    src = Source()
    src.version = 2
    cache = Refreshed(src.load, src.get_version, ttl=0.0, clock=lambda: src.now)
    await cache.get()
    src.down = True
    assert (await cache.get()).sender(["A@x.example".lower()], []) is not None
    fresh = Refreshed(src.load, src.get_version, ttl=0.0)
    with pytest.raises(ConnectionError):
        await fresh.get()  # nothing to fall back on at start: the service refuses to start


def test_parent_domains_and_client_networks_are_matched() -> None:
    import ipaddress

    block = Block("K", "n")
    blocks = BlockSet(targets={"customer.example": block}, networks=((ipaddress.ip_network("192.0.2.0/28"), block),))
    assert blocks.sender(["x@mail.sub.customer.example"], []) is block
    assert blocks.sender(["x@notcustomer.example"], []) is None
    assert blocks.client("192.0.2.7") is block and blocks.client("192.0.2.99") is None and blocks.client("junk") is None
