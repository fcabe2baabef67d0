"""Service jobs and everything a job carries: buyer, items, location, payments, appointments."""

from __future__ import annotations

from datetime import datetime

import attrs

from ._base import ApiModel
from .common import MoneyAmount
from .enums import AppointmentStatus, ItemStatus, PoaType, ServiceJobStatus, ServiceLocationType

__all__ = [
    "Address",
    "Appointment",
    "AppointmentTime",
    "AssociatedItem",
    "Buyer",
    "ItemDelivery",
    "ItemDeliveryPromise",
    "JobListing",
    "LinkedAsset",
    "Payment",
    "Poa",
    "ScopeOfWork",
    "Seller",
    "ServiceJob",
    "ServiceJobProvider",
    "ServiceLocation",
    "Technician",
]


@attrs.frozen(kw_only=True)
class AppointmentTime(ApiModel):
    """When an appointment starts and how long it lasts."""

    start_time: datetime
    duration_in_minutes: int


@attrs.frozen(kw_only=True)
class Technician(ApiModel):
    """A technician assigned to, or recorded on, an appointment."""

    technician_id: str | None = None
    name: str | None = None


@attrs.frozen(kw_only=True)
class Poa(ApiModel):
    """Proof of appointment: who was there, when, and what they uploaded."""

    appointment_time: AppointmentTime | None = None
    technicians: tuple[Technician, ...] | None = None
    uploading_technician: str | None = None
    upload_time: datetime | None = None
    poa_type: PoaType | None = None


@attrs.frozen(kw_only=True)
class Appointment(ApiModel):
    """One appointment of a job; a rescheduled one points at the appointment it replaced."""

    appointment_id: str | None = None
    appointment_status: AppointmentStatus | None = None
    appointment_time: AppointmentTime | None = None
    assigned_technicians: tuple[Technician, ...] | None = None
    rescheduled_appointment_id: str | None = None
    poa: Poa | None = None


@attrs.frozen(kw_only=True)
class ScopeOfWork(ApiModel):
    """What the buyer ordered to be done."""

    asin: str | None = None
    title: str | None = None
    quantity: int | None = None
    required_skills: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class Seller(ApiModel):
    """The selling partner that sold the service."""

    seller_id: str | None = None


@attrs.frozen(kw_only=True)
class ServiceJobProvider(ApiModel):
    """The provider that carries out the job."""

    service_job_provider_id: str | None = None


@attrs.frozen(kw_only=True)
class Buyer(ApiModel):
    """The customer.  Personal data: never log it."""

    buyer_id: str | None = None
    name: str | None = None
    phone: str | None = None
    is_prime_member: bool | None = None


@attrs.frozen(kw_only=True)
class ItemDeliveryPromise(ApiModel):
    """The window in which an item was promised to arrive."""

    start_time: datetime | None = None
    end_time: datetime | None = None


@attrs.frozen(kw_only=True)
class ItemDelivery(ApiModel):
    """Delivery expectations for an item bought with the service."""

    estimated_delivery_date: datetime | None = None
    item_delivery_promise: ItemDeliveryPromise | None = None


@attrs.frozen(kw_only=True)
class LinkedAsset(ApiModel):
    """Something tied to an item, such as the vehicle for a ship-to-store order."""

    asset_type: str | None = None
    asset_name: str | None = None
    additional_attributes: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class AssociatedItem(ApiModel):
    """A product bought together with the service."""

    asin: str | None = None
    title: str | None = None
    quantity: int | None = None
    order_id: str | None = None
    item_status: ItemStatus | None = None
    brand_name: str | None = None
    item_delivery: ItemDelivery | None = None
    linked_assets: tuple[LinkedAsset, ...] | None = None


@attrs.frozen(kw_only=True)
class Address(ApiModel):
    """A postal address.  Personal data: never log it."""

    name: str
    address_line1: str
    address_line2: str | None = None
    address_line3: str | None = None
    city: str | None = None
    county: str | None = None
    district: str | None = None
    state_or_region: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    phone: str | None = None


@attrs.frozen(kw_only=True)
class ServiceLocation(ApiModel):
    """Where the job happens."""

    service_location_type: ServiceLocationType | None = None
    address: Address | None = None


@attrs.frozen(kw_only=True)
class Payment(ApiModel):
    """A payment the buyer made for the job."""

    amount: MoneyAmount | None = None
    instrument: str | None = None


@attrs.frozen(kw_only=True)
class ServiceJob(ApiModel):
    """A service job, with its appointments, items, buyer and location."""

    create_time: datetime | None = None
    service_job_id: str | None = None
    service_job_status: ServiceJobStatus | None = None
    scope_of_work: ScopeOfWork | None = None
    seller: Seller | None = None
    service_job_provider: ServiceJobProvider | None = None
    preferred_appointment_times: tuple[AppointmentTime, ...] | None = None
    appointments: tuple[Appointment, ...] | None = None
    service_order_id: str | None = None
    product_order_ids: tuple[str, ...] | None = None
    tracking_ids: tuple[str, ...] | None = None
    marketplace_id: str | None = None
    store_id: str | None = None
    buyer: Buyer | None = None
    associated_items: tuple[AssociatedItem, ...] | None = None
    service_location: ServiceLocation | None = None
    payments: tuple[Payment, ...] | None = None


@attrs.frozen(kw_only=True)
class JobListing(ApiModel):
    """One page of a job search."""

    total_result_size: int | None = None
    next_page_token: str | None = None
    previous_page_token: str | None = None
    jobs: tuple[ServiceJob, ...] | None = None
