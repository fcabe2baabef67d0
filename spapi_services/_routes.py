"""The 17 operations of the Services API, as data.

This table is the only place that knows each operation's method, path, usage plan and
whether it may be sent twice.  The transport, the rate limiter, the emulator and the
benchmarks all read it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import attrs

__all__ = ["ROUTES", "Route", "route"]


@attrs.frozen(kw_only=True)
class Route:
    """One operation: how it is called and how often it may be."""

    operation_id: str
    method: str
    path: str
    rate: float
    """Requests per second the published usage plan refills."""
    burst: int
    """Requests the bucket holds when full."""
    idempotent: bool
    """Whether sending it twice is harmless, so an ambiguous failure may be retried."""
    marketplace_ids: bool = False
    """Whether the operation takes ``marketplaceIds`` in its query string."""
    success_status: int = 200

    def path_params(self) -> tuple[str, ...]:
        """Names of the ``{placeholders}`` in the path, in order."""
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


_JOB = "/service/v1/serviceJobs/{serviceJobId}"
_APPOINTMENT = _JOB + "/appointments/{appointmentId}"
_RESOURCE = "/service/v1/serviceResources/{resourceId}"

_TABLE: Final = (
    Route(
        operation_id="getServiceJobByServiceJobId",
        method="GET",
        path=_JOB,
        rate=20,
        burst=40,
        idempotent=True,
    ),
    Route(
        operation_id="cancelServiceJobByServiceJobId",
        method="PUT",
        path=_JOB + "/cancellations",
        rate=5,
        burst=20,
        idempotent=True,
    ),
    Route(
        operation_id="completeServiceJobByServiceJobId",
        method="PUT",
        path=_JOB + "/completions",
        rate=5,
        burst=20,
        idempotent=True,
    ),
    Route(
        operation_id="getServiceJobs",
        method="GET",
        path="/service/v1/serviceJobs",
        rate=10,
        burst=40,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="addAppointmentForServiceJobByServiceJobId",
        method="POST",
        path=_JOB + "/appointments",
        rate=5,
        burst=20,
        idempotent=False,
    ),
    Route(
        operation_id="rescheduleAppointmentForServiceJobByServiceJobId",
        method="POST",
        path=_APPOINTMENT,
        rate=5,
        burst=20,
        idempotent=False,
    ),
    Route(
        operation_id="assignAppointmentResources",
        method="PUT",
        path=_APPOINTMENT + "/resources",
        rate=1,
        burst=2,
        idempotent=True,
    ),
    Route(
        operation_id="setAppointmentFulfillmentData",
        method="PUT",
        path=_APPOINTMENT + "/fulfillment",
        rate=5,
        burst=20,
        idempotent=True,
        success_status=204,
    ),
    Route(
        operation_id="getRangeSlotCapacity",
        method="POST",
        path=_RESOURCE + "/capacity/range",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="getFixedSlotCapacity",
        method="POST",
        path=_RESOURCE + "/capacity/fixed",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="updateSchedule",
        method="PUT",
        path=_RESOURCE + "/schedules",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="createReservation",
        method="POST",
        path="/service/v1/reservation",
        rate=5,
        burst=20,
        idempotent=False,
        marketplace_ids=True,
    ),
    Route(
        operation_id="updateReservation",
        method="PUT",
        path="/service/v1/reservation/{reservationId}",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="cancelReservation",
        method="DELETE",
        path="/service/v1/reservation/{reservationId}",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
        success_status=204,
    ),
    # The operationId's double "m" is Amazon's; everything keyed on it must keep it.
    Route(
        operation_id="getAppointmmentSlotsByJobId",
        method="GET",
        path=_JOB + "/appointmentSlots",
        rate=5,
        burst=20,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="getAppointmentSlots",
        method="GET",
        path="/service/v1/appointmentSlots",
        rate=20,
        burst=40,
        idempotent=True,
        marketplace_ids=True,
    ),
    Route(
        operation_id="createServiceDocumentUploadDestination",
        method="POST",
        path="/service/v1/documents",
        rate=5,
        burst=20,
        idempotent=False,
    ),
)

#: operationId -> Route, for all 17 operations.
ROUTES: Final = MappingProxyType({r.operation_id: r for r in _TABLE})


def route(operation_id: str) -> Route:
    """The route of an operation; a KeyError names the unknown operationId."""
    try:
        return ROUTES[operation_id]
    except KeyError:
        raise KeyError(f"unknown Services API operation {operation_id!r}") from None
