"""The free appointment slots of a job, or of a store's service (by ASIN).

A slot is an hour-aligned window as long as the service takes, within the store's
working hours; its capacity is what the store (taken as a whole resource) has left
there after reservations and active appointments.  Without a window the emulator
looks a week ahead ("as per business configuration"); a window is at most 90 days.
The two operations word their 400s slightly differently, as the sandbox does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .capacity import appointment_slots, pieces
from .context import Handler, ServiceContext
from .replies import Reply, invalid_input, json_reply, unprocessable
from .times import format_datetime, parse_time
from .validation import Call

__all__ = ["SlotsApi"]

_MAX_SLOT_RANGE = timedelta(days=90)
_DEFAULT_SLOT_RANGE = timedelta(days=7)


class SlotsApi:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {
            "getAppointmmentSlotsByJobId": self.slots_for_job,
            "getAppointmentSlots": self.slots_for_store,
        }

    def slots_for_job(self, call: Call) -> Reply:
        job_id = call.path["serviceJobId"]
        start, end = self._slot_window(call, "")
        job = self.ctx.store.job(job_id)
        if job is None:
            raise unprocessable(f"No job exist with jobId : {job_id}")
        return self._slot_report(job.store_id, start, end, job.duration)

    def slots_for_store(self, call: Call) -> Reply:
        asin, store_id = call.query["asin"], call.query["storeId"]
        start, end = self._slot_window(call, "Range ")
        shop = self.ctx.store.stores.get(store_id)
        if shop is None:
            raise unprocessable(f"No store exists with storeId : {store_id}")
        if asin not in shop.services:
            raise unprocessable(f"ASIN {asin} is not offered as a service by store {store_id}")
        return self._slot_report(store_id, start, end, shop.services[asin])

    def _slot_window(self, call: Call, prefix: str) -> tuple[datetime, datetime]:
        given = {}
        for name, label in (("startTime", "Start Time"), ("endTime", "End Time")):
            if name in call.query:
                try:
                    given[name] = parse_time(call.query[name])
                except ValueError:
                    raise invalid_input(
                        f"{prefix}{label} is not a valid ISO date/time object"
                    ) from None
        if len(given) == 1:
            raise invalid_input(f"{prefix}Start Time and {prefix}End Time must be given together")
        if not given:
            now = self.ctx.clock.now()
            start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            return start, start + _DEFAULT_SLOT_RANGE
        start, end = given["startTime"], given["endTime"]
        if end <= start:
            raise invalid_input(f"{prefix}End Time should be after {prefix}Start Time")
        if end - start > _MAX_SLOT_RANGE:
            raise invalid_input("Maximum range of appointment slots can be 90 days")
        return start, end

    def _slot_report(self, store_id: str, start: datetime, end: datetime, minutes: int) -> Reply:
        store = self.ctx.store
        shop = store.resources[store_id]
        slots = appointment_slots(pieces(store, shop, start, end), start, end, minutes)
        return json_reply(
            {
                "payload": {
                    "schedulingType": store.stores[store_id].scheduling_type,
                    "startTime": format_datetime(start),
                    "endTime": format_datetime(end),
                    "appointmentSlots": slots,
                }
            }
        )
