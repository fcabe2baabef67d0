"""End-to-end fixtures: the SDK against the emulator, over real sockets on 127.0.0.1."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timedelta

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import JobRecord


def tiny_png() -> bytes:
    """A valid 1x1 PNG, made here rather than kept as a binary fixture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def unscheduled_job(emu: ServicesEmulator) -> JobRecord:
    """A job waiting for its first appointment."""
    return emu.store.find_jobs(status="PENDING_SCHEDULE")[0]


async def bookable_start(
    emu: ServicesEmulator, client: ServicesClient, job: JobRecord
) -> tuple[datetime, int]:
    """A free slot of the job that a qualified technician works, as (start, minutes)."""
    report = await client.appointments.slots_for_job(
        job.service_job_id, marketplace_id=job.marketplace_id
    )
    qualified = emu.store.qualified_resources(job.service_job_id)
    for slot in report.appointment_slots or ():
        assert slot.start_time is not None
        assert slot.end_time is not None
        if slot.capacity and any(t.covers(slot.start_time, slot.end_time) for t in qualified):
            minutes = int((slot.end_time - slot.start_time) / timedelta(minutes=1))
            return slot.start_time, minutes
    raise AssertionError("the seeded world offers no bookable slot for this job")
