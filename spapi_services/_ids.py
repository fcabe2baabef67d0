"""What the resources take where an id is expected: the id, or a record that carries it.

``client.appointments.add(job, ...)`` takes the ``ServiceJob`` itself, ``assign_resources``
takes the technicians as ids or as anything with a ``resource_id`` (the emulator's
records, an ``AppointmentResource``) or a ``technician_id`` (a job's ``Technician``), and
so on: the id is read from the record, and checked as an id given as a string would be.
"""

from __future__ import annotations

from typing import Protocol

from ._validation import check_id

__all__ = [
    "AppointmentRef",
    "JobRef",
    "ResourceRef",
    "appointment_id",
    "job_id",
    "resource_id",
]


class _CarriesJobId(Protocol):
    @property
    def service_job_id(self) -> str | None: ...


class _CarriesAppointmentId(Protocol):
    @property
    def appointment_id(self) -> str | None: ...


class _CarriesResourceId(Protocol):
    @property
    def resource_id(self) -> str | None: ...


class _CarriesTechnicianId(Protocol):
    @property
    def technician_id(self) -> str | None: ...


#: A service job's id, or a record with ``service_job_id`` (a ``ServiceJob``).
JobRef = str | _CarriesJobId
#: An appointment's id, or a record with ``appointment_id`` (an ``AppointmentResult``,
#: an ``Appointment``).
AppointmentRef = str | _CarriesAppointmentId
#: A resource's (technician's) id, or a record with ``resource_id`` or ``technician_id``.
ResourceRef = str | _CarriesResourceId | _CarriesTechnicianId

_RESOURCE = ("resource_id", "technician_id")


def job_id(value: JobRef, name: str = "service_job_id") -> str:
    """The service job id ``value`` is or carries, checked."""
    return check_id(name, value, carried_as=("service_job_id",))


def appointment_id(value: AppointmentRef, name: str = "appointment_id") -> str:
    """The appointment id ``value`` is or carries, checked."""
    return check_id(name, value, carried_as=("appointment_id",))


def resource_id(value: ResourceRef, name: str = "resource_id") -> str:
    """The resource id ``value`` is or carries, checked."""
    return check_id(name, value, carried_as=_RESOURCE)
