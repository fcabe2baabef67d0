"""Every enumeration of the Services API, each on the forward-compatible :class:`ApiEnum` base."""

from __future__ import annotations

from ._base import ApiEnum

__all__ = [
    "AppointmentStatus",
    "CapacityType",
    "ContentType",
    "DayOfWeek",
    "EncryptionStandard",
    "ErrorLevel",
    "ItemStatus",
    "PoaType",
    "ReservationType",
    "SchedulingType",
    "ServiceJobStatus",
    "ServiceLocationType",
    "SortField",
    "SortOrder",
]


class ServiceJobStatus(ApiEnum):
    """Where a service job stands."""

    NOT_SERVICED = "NOT_SERVICED"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"
    PENDING_SCHEDULE = "PENDING_SCHEDULE"
    NOT_FULFILLABLE = "NOT_FULFILLABLE"
    HOLD = "HOLD"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"


class AppointmentStatus(ApiEnum):
    """State of one appointment of a job."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    COMPLETED = "COMPLETED"


class PoaType(ApiEnum):
    """Kind of proof of appointment a technician uploaded."""

    NO_SIGNATURE_DUMMY_POS = "NO_SIGNATURE_DUMMY_POS"
    CUSTOMER_SIGNATURE = "CUSTOMER_SIGNATURE"
    DUMMY_RECEIPT = "DUMMY_RECEIPT"
    POA_RECEIPT = "POA_RECEIPT"


class ItemStatus(ApiEnum):
    """State of an item bought together with the service."""

    ACTIVE = "ACTIVE"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"


class ServiceLocationType(ApiEnum):
    """Where the service is carried out."""

    IN_HOME = "IN_HOME"
    IN_STORE = "IN_STORE"
    ONLINE = "ONLINE"


class ContentType(ApiEnum):
    """File types accepted for fulfilment documents (tokens, not MIME types)."""

    TIFF = "TIFF"
    JPG = "JPG"
    PNG = "PNG"
    JPEG = "JPEG"
    GIF = "GIF"
    PDF = "PDF"

    @property
    def mime_type(self) -> str:
        """The MIME type to send with the file's bytes."""
        return _MIME_TYPES.get(self.value, "application/octet-stream")


_MIME_TYPES = {
    "TIFF": "image/tiff",
    # Amazon's model maps JPG to the non-standard image/jpg; image/jpeg is what S3 and
    # every browser expect, and the signed content type only has to match what we send.
    "JPG": "image/jpeg",
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "PDF": "application/pdf",
}


class CapacityType(ApiEnum):
    """Which figure of a resource's capacity to report."""

    SCHEDULED_CAPACITY = "SCHEDULED_CAPACITY"
    AVAILABLE_CAPACITY = "AVAILABLE_CAPACITY"
    ENCUMBERED_CAPACITY = "ENCUMBERED_CAPACITY"
    RESERVED_CAPACITY = "RESERVED_CAPACITY"


class DayOfWeek(ApiEnum):
    """A weekday in a recurrence rule."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationType(ApiEnum):
    """Why a block of a resource's time is reserved."""

    APPOINTMENT = "APPOINTMENT"
    TRAVEL = "TRAVEL"
    VACATION = "VACATION"
    BREAK = "BREAK"
    TRAINING = "TRAINING"


class SortField(ApiEnum):
    """Field that orders the results of a job search."""

    JOB_DATE = "JOB_DATE"
    JOB_STATUS = "JOB_STATUS"


class SortOrder(ApiEnum):
    """Direction of a job search's ordering."""

    ASC = "ASC"
    DESC = "DESC"


class ErrorLevel(ApiEnum):
    """Severity the API gives an error entry."""

    ERROR = "ERROR"
    WARNING = "WARNING"


class SchedulingType(ApiEnum):
    """Whether appointment slots are booked in real time."""

    REAL_TIME_SCHEDULING = "REAL_TIME_SCHEDULING"
    NON_REAL_TIME_SCHEDULING = "NON_REAL_TIME_SCHEDULING"


class EncryptionStandard(ApiEnum):
    """Cipher the API asks uploads to be encrypted with."""

    AES = "AES"
