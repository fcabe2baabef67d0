"""The resources of a :class:`~spapi_services.ServicesClient`, one module per area."""

from .appointments import Appointments
from .documents import Documents
from .reservations import Reservations
from .schedules import Schedules
from .service_jobs import ServiceJobs

__all__ = ["Appointments", "Documents", "Reservations", "Schedules", "ServiceJobs"]
