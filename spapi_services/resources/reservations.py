"""Reservations: blocks of a resource's time taken out of its schedule."""

from __future__ import annotations

from .. import _ids, _serde
from .._ids import ResourceRef
from .._validation import check_id, check_request
from ..models.scheduling import CreateReservationRecord, Reservation, UpdateReservationRecord
from ._base import Resource

__all__ = ["Reservations"]

_CREATE = "createReservation"
_UPDATE = "updateReservation"
_CANCEL = "cancelReservation"


class Reservations(Resource):
    """Create, change and cancel reservations of a resource's time."""

    async def create(
        self,
        resource_id: ResourceRef,
        reservation: Reservation,
        *,
        marketplace_id: str | None = None,
    ) -> CreateReservationRecord:
        """Reserve a block of a resource's time.

        Not retried after an ambiguous failure: it might have been created already.
        """
        body = _body(resource_id, reservation)
        return await self._payload(
            _CREATE,
            CreateReservationRecord,
            query={"marketplaceIds": self._marketplace(marketplace_id)},
            body=body,
        )

    async def update(
        self,
        reservation_id: str,
        resource_id: ResourceRef,
        reservation: Reservation,
        *,
        marketplace_id: str | None = None,
    ) -> UpdateReservationRecord:
        """Change a reservation's time or type."""
        res_id = check_id("reservation_id", reservation_id, carried_as=("reservation_id",))
        body = _body(resource_id, reservation)
        return await self._payload(
            _UPDATE,
            UpdateReservationRecord,
            path={"reservationId": res_id},
            query={"marketplaceIds": self._marketplace(marketplace_id)},
            body=body,
        )

    async def cancel(self, reservation_id: str, *, marketplace_id: str | None = None) -> None:
        """Cancel a reservation, giving its time back to the schedule.

        A retry after an unclear first attempt (a timeout, a lost answer) that meets 404
        most likely means the first attempt cancelled it, but the API has no way to read a
        reservation back to be sure: the :class:`~spapi_services.errors.NotFoundError` is
        raised with ``may_have_taken_effect`` set and a note saying so.
        """
        res_id = check_id("reservation_id", reservation_id, carried_as=("reservation_id",))
        await self._send(
            _CANCEL,
            path={"reservationId": res_id},
            query={"marketplaceIds": self._marketplace(marketplace_id)},
        )


def _body(resource_id: ResourceRef, reservation: Reservation) -> dict[str, object]:
    res_id = _ids.resource_id(resource_id)
    if not isinstance(reservation, Reservation):
        raise TypeError(f"reservation: expected a Reservation, got {type(reservation).__name__}")
    check_request(reservation, "reservation")
    return {"resourceId": res_id, "reservation": _serde.unstructure(reservation)}
