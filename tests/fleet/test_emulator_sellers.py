"""The emulator with several sellers: each refresh token sees a world of its own."""

from __future__ import annotations

import pytest
from _emulators import NOW

from spapi_services import RetryPolicy, ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.errors import NotFoundError, RateLimitError

US = "ATVPDKIKX0DER"


def client_of(emu: ServicesEmulator, index: int) -> ServicesClient:
    return ServicesClient(
        emu.sellers[index].credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
        rate_limits=False,
    )


async def listed(emu: ServicesEmulator, index: int) -> set[str]:
    async with client_of(emu, index) as client:
        return {
            job.service_job_id
            async for job in client.service_jobs.list(created_after=NOW.replace(year=2025))
            if job.service_job_id
        }


async def test_each_sellers_token_sees_its_own_jobs() -> None:
    async with ServicesEmulator(jobs=30, seed=4, sellers=3, at=NOW, enforce_limits=False) as emu:
        seen = [await listed(emu, i) for i in range(3)]
        for i, seller in enumerate(emu.sellers):
            own = {j.service_job_id for j in seller.store.find_jobs(marketplace_id=US)}
            assert seen[i] == own
            assert own
            assert {j.details["seller"]["sellerId"] for j in seller.store.jobs.values()} == {
                seller.seller_id
            }
        assert not seen[0] & seen[1]
        assert not seen[1] & seen[2]
        assert len({s.seller_id for s in emu.sellers}) == 3
        assert len({s.refresh_token for s in emu.sellers}) == 3


async def test_a_change_through_one_seller_stays_in_its_world() -> None:
    async with ServicesEmulator(jobs=30, seed=4, sellers=2, at=NOW, enforce_limits=False) as emu:
        first, second = emu.sellers
        job = first.store.find_jobs(status="NOT_SERVICED")[0]
        async with client_of(emu, 1) as client:
            with pytest.raises(NotFoundError):
                await client.service_jobs.get(job.service_job_id)
        async with client_of(emu, 0) as client:
            await client.service_jobs.cancel(job.service_job_id, reason_code="V1")
        assert first.store.jobs[job.service_job_id].status == "CANCELLED"
        assert job.service_job_id not in second.store.jobs


def test_worlds_and_tokens_are_drawn_from_the_seed_and_the_index() -> None:
    one = ServicesEmulator(jobs=20, seed=9, sellers=3, reference_time=NOW)
    two = ServicesEmulator(jobs=20, seed=9, sellers=2, reference_time=NOW)
    two.add_seller()
    alone = ServicesEmulator(jobs=20, seed=9, reference_time=NOW)
    for a, b in zip(one.sellers, two.sellers, strict=True):
        assert a.refresh_token == b.refresh_token
        assert set(a.store.jobs) == set(b.store.jobs)
    # The first seller is the single-seller emulator, unchanged.
    assert one.credentials == alone.credentials == one.sellers[0].credentials
    assert set(one.store.jobs) == set(alone.store.jobs) == set(one.sellers[0].store.jobs)
    other = ServicesEmulator(jobs=20, seed=10, sellers=2, reference_time=NOW)
    assert set(other.sellers[1].store.jobs) != set(one.sellers[1].store.jobs)


async def test_each_seller_has_usage_plans_of_its_own() -> None:
    async with ServicesEmulator(jobs=5, seed=1, sellers=2, at=NOW) as emu:
        emu.limits.set("getServiceJobByServiceJobId", rate=0.01, burst=1)
        jobs = [next(iter(s.store.jobs)) for s in emu.sellers]
        async with client_of(emu, 0) as first, client_of(emu, 1) as second:
            await first.service_jobs.get(jobs[0])
            with pytest.raises(RateLimitError):
                await first.service_jobs.get(jobs[0])
            # The other seller's bucket is still full.
            assert (await second.service_jobs.get(jobs[1])).service_job_id == jobs[1]


async def test_a_seller_added_while_running_is_served() -> None:
    async with ServicesEmulator(jobs=10, seed=2, at=NOW, enforce_limits=False) as emu:
        seller = emu.add_seller()
        assert emu.sellers == [emu.sellers[0], seller]
        assert await listed(emu, 1) == {
            j.service_job_id for j in seller.store.find_jobs(marketplace_id=US)
        }
        with pytest.raises(ValueError, match="already"):
            emu.add_seller(seller.refresh_token)


@pytest.mark.parametrize("sellers", [0, -1, 1.5, True])
def test_a_bad_number_of_sellers_is_refused(sellers: object) -> None:
    with pytest.raises(ValueError, match="sellers"):
        ServicesEmulator(sellers=sellers)  # type: ignore[arg-type]
