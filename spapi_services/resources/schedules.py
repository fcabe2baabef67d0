"""A resource's schedule (working hours) and the capacity it leaves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from .. import _ids, _serde
from .._ids import ResourceRef
from .._pagination import PageIterator
from .._validation import (
    check_datetime,
    check_enum,
    check_items,
    check_request,
    check_string,
)
from ..models.enums import CapacityType
from ..models.scheduling import (
    AvailabilityRecord,
    FixedSlotCapacity,
    FixedSlotCapacityQuery,
    RangeSlotCapacity,
    RangeSlotCapacityQuery,
    UpdateScheduleRecord,
)
from ._base import Resource

__all__ = ["Schedules"]

_UPDATE = "updateSchedule"
_RANGE = "getRangeSlotCapacity"
_FIXED = "getFixedSlotCapacity"

P = TypeVar("P", RangeSlotCapacity, FixedSlotCapacity)


class Schedules(Resource):
    """Set a resource's working hours; read its capacity in ranges or fixed slots."""

    async def update(
        self,
        resource_id: ResourceRef,
        schedules: Iterable[AvailabilityRecord],
        *,
        marketplace_id: str | None = None,
    ) -> list[UpdateScheduleRecord]:
        """Replace a resource's schedule.

        Returns only the records the API had something to say about (warnings such as an
        override, or per-record errors); an empty list means every record was taken.
        """
        res_id = _ids.resource_id(resource_id)
        records = check_items("schedules", schedules, min_items=1)
        for index, record in enumerate(records):
            if not isinstance(record, AvailabilityRecord):
                raise TypeError(
                    f"schedules[{index}]: expected an AvailabilityRecord, "
                    f"got {type(record).__name__}"
                )
            check_request(record, f"schedules[{index}]")
        # An empty 2xx body, like ``{}``, has nothing to say about any record.
        found = await self._payload(
            _UPDATE,
            tuple[UpdateScheduleRecord, ...],
            path={"resourceId": res_id},
            query={"marketplaceIds": self._marketplace(marketplace_id)},
            body={"schedules": [_serde.unstructure(r) for r in records]},
            empty=tuple,
        )
        return list(found)

    def range_capacity(
        self,
        resource_id: ResourceRef,
        *,
        start_time: datetime,
        end_time: datetime,
        capacity_types: Iterable[CapacityType | str] | None = None,
        marketplace_id: str | None = None,
        page_token: str | None = None,
    ) -> PageIterator[RangeSlotCapacity]:
        """Capacity over a window, in ranges of equal capacity, page by page.

        ``async for page in client.schedules.range_capacity(...)``.
        """
        res_id, types = _capacity_args(resource_id, start_time, end_time, capacity_types)
        body = RangeSlotCapacityQuery(
            start_date_time=start_time, end_date_time=end_time, capacity_types=types
        )
        return self._pages(_RANGE, res_id, body, RangeSlotCapacity, marketplace_id, page_token)

    def fixed_capacity(
        self,
        resource_id: ResourceRef,
        *,
        start_time: datetime,
        end_time: datetime,
        slot_duration: int | None = None,
        capacity_types: Iterable[CapacityType | str] | None = None,
        marketplace_id: str | None = None,
        page_token: str | None = None,
    ) -> PageIterator[FixedSlotCapacity]:
        """Capacity over a window in slots of ``slot_duration`` minutes, page by page."""
        res_id, types = _capacity_args(resource_id, start_time, end_time, capacity_types)
        body = FixedSlotCapacityQuery(
            start_date_time=start_time,
            end_date_time=end_time,
            capacity_types=types,
            slot_duration=slot_duration,
        )
        check_request(body, "query")
        return self._pages(_FIXED, res_id, body, FixedSlotCapacity, marketplace_id, page_token)

    def _pages(
        self,
        operation: str,
        resource_id: str,
        body: Any,
        cls: type[P],
        marketplace_id: str | None,
        page_token: str | None,
    ) -> PageIterator[P]:
        market = self._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        data = _serde.unstructure(body)

        async def fetch(token: str | None) -> P:
            query = {"marketplaceIds": market, "nextPageToken": token}
            return await self._result(
                operation, cls, path={"resourceId": resource_id}, query=query, body=data
            )

        return PageIterator(fetch, lambda page: page.next_page_token, page_token=page_token)


def _capacity_args(
    resource_id: ResourceRef,
    start_time: datetime,
    end_time: datetime,
    capacity_types: Iterable[CapacityType | str] | None,
) -> tuple[str, list[CapacityType] | None]:
    res_id = _ids.resource_id(resource_id)
    check_datetime("start_time", start_time)
    check_datetime("end_time", end_time)
    if end_time <= start_time:
        raise ValueError("end_time: must be after start_time")
    types = None
    if capacity_types is not None:
        items = check_items("capacity_types", capacity_types, min_items=1)
        types = [check_enum(f"capacity_types[{i}]", t, CapacityType) for i, t in enumerate(items)]
    return res_id, types
