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


@attrs.frozen
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
    Route("getServiceJobByServiceJobId", "GET", _JOB, 20, 40, True),
    Route("cancelServiceJobByServiceJobId", "PUT", _JOB + "/cancellations", 5, 20, True),
    Route("completeServiceJobByServiceJobId", "PUT", _JOB + "/completions", 5, 20, True),
    Route("getServiceJobs", "GET", "/service/v1/serviceJobs", 10, 40, True, True),
    Route(
        "addAppointmentForServiceJobByServiceJobId", "POST", _JOB + "/appointments", 5, 20, False
    ),
    Route("rescheduleAppointmentForServiceJobByServiceJobId", "POST", _APPOINTMENT, 5, 20, False),
    Route("assignAppointmentResources", "PUT", _APPOINTMENT + "/resources", 1, 2, True),
    Route(
        "setAppointmentFulfillmentData",
        "PUT",
        _APPOINTMENT + "/fulfillment",
        5,
        20,
        True,
        success_status=204,
    ),
    Route("getRangeSlotCapacity", "POST", _RESOURCE + "/capacity/range", 5, 20, True, True),
    Route("getFixedSlotCapacity", "POST", _RESOURCE + "/capacity/fixed", 5, 20, True, True),
    Route("updateSchedule", "PUT", _RESOURCE + "/schedules", 5, 20, True, True),
    Route("createReservation", "POST", "/service/v1/reservation", 5, 20, False, True),
    Route("updateReservation", "PUT", "/service/v1/reservation/{reservationId}", 5, 20, True, True),
    Route(
        "cancelReservation",
        "DELETE",
        "/service/v1/reservation/{reservationId}",
        5,
        20,
        True,
        True,
        success_status=204,
    ),
    # The operationId's double "m" is Amazon's; everything keyed on it must keep it.
    Route("getAppointmmentSlotsByJobId", "GET", _JOB + "/appointmentSlots", 5, 20, True, True),
    Route("getAppointmentSlots", "GET", "/service/v1/appointmentSlots", 20, 40, True, True),
    Route("createServiceDocumentUploadDestination", "POST", "/service/v1/documents", 5, 20, False),
)

#: operationId -> Route, for all 17 operations.
ROUTES: Final = MappingProxyType({r.operation_id: r for r in _TABLE})


def route(operation_id: str) -> Route:
    """The route of an operation; a KeyError names the unknown operationId."""
    try:
        return ROUTES[operation_id]
    except KeyError:
        raise KeyError(f"unknown Services API operation {operation_id!r}") from None
