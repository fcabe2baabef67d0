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

    #: When the appointment starts (timezone-aware).
    start_time: datetime
    #: How many minutes the appointment is booked for.
    duration_in_minutes: int


@attrs.frozen(kw_only=True)
class Technician(ApiModel):
    """A technician assigned to, or recorded on, an appointment."""

    #: The technician's id, as Amazon knows the resource.
    technician_id: str | None = None
    #: The technician's name.
    name: str | None = None


@attrs.frozen(kw_only=True)
class Poa(ApiModel):
    """Proof of appointment: who was there, when, and what they uploaded."""

    #: The appointment the proof is for.
    appointment_time: AppointmentTime | None = None
    #: The technicians who carried out the work.
    technicians: tuple[Technician, ...] | None = None
    #: The id of the technician who uploaded the proof.
    uploading_technician: str | None = None
    #: When the proof was uploaded.
    upload_time: datetime | None = None
    #: What kind of proof it is (a signature, a receipt...).
    poa_type: PoaType | None = None


@attrs.frozen(kw_only=True)
class Appointment(ApiModel):
    """One appointment of a job; a rescheduled one points at the appointment it replaced."""

    #: The appointment's id, for rescheduling, staffing and fulfilment calls.
    appointment_id: str | None = None
    #: Whether the appointment is active, cancelled or completed.
    appointment_status: AppointmentStatus | None = None
    #: When it starts and how long it lasts.
    appointment_time: AppointmentTime | None = None
    #: The technicians put on it.
    assigned_technicians: tuple[Technician, ...] | None = None
    #: The id of the appointment this one replaced, when it came from a reschedule.
    rescheduled_appointment_id: str | None = None
    #: The proof of appointment, once uploaded.
    poa: Poa | None = None


@attrs.frozen(kw_only=True)
class ScopeOfWork(ApiModel):
    """What the buyer ordered to be done."""

    #: The ASIN of the service product bought.
    asin: str | None = None
    #: The service product's title.
    title: str | None = None
    #: How many units of the service were bought.
    quantity: int | None = None
    #: Skills a technician must have to take the job.
    required_skills: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class Seller(ApiModel):
    """The selling partner that sold the service."""

    #: The selling partner's id.
    seller_id: str | None = None


@attrs.frozen(kw_only=True)
class ServiceJobProvider(ApiModel):
    """The provider that carries out the job."""

    #: The provider's id.
    service_job_provider_id: str | None = None


@attrs.frozen(kw_only=True)
class Buyer(ApiModel):
    """The customer.  Personal data: never log it."""

    #: Amazon's id for the customer.
    buyer_id: str | None = None
    #: The customer's name.
    name: str | None = None
    #: The customer's phone number.
    phone: str | None = None
    #: Whether the customer has Amazon Prime.
    is_prime_member: bool | None = None


@attrs.frozen(kw_only=True)
class ItemDeliveryPromise(ApiModel):
    """The window in which an item was promised to arrive."""

    #: The start of the promised delivery window.
    start_time: datetime | None = None
    #: The end of the promised delivery window.
    end_time: datetime | None = None


@attrs.frozen(kw_only=True)
class ItemDelivery(ApiModel):
    """Delivery expectations for an item bought with the service."""

    #: When the item is expected to arrive.
    estimated_delivery_date: datetime | None = None
    #: The window in which its arrival was promised.
    item_delivery_promise: ItemDeliveryPromise | None = None


@attrs.frozen(kw_only=True)
class LinkedAsset(ApiModel):
    """Something tied to an item, such as the vehicle for a ship-to-store order."""

    #: What kind of asset it is (a vehicle, for instance).
    asset_type: str | None = None
    #: The asset's name.
    asset_name: str | None = None
    #: Free-form details of the asset, by name (may name a plate or a VIN: personal data).
    additional_attributes: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class AssociatedItem(ApiModel):
    """A product bought together with the service."""

    #: The item's ASIN.
    asin: str | None = None
    #: The item's title.
    title: str | None = None
    #: How many were bought.
    quantity: int | None = None
    #: The Amazon order the item was bought in.
    order_id: str | None = None
    #: Where the item stands (active, shipped, delivered, cancelled).
    item_status: ItemStatus | None = None
    #: The item's brand.
    brand_name: str | None = None
    #: When the item is expected to be delivered.
    item_delivery: ItemDelivery | None = None
    #: Assets tied to the item, such as the vehicle for a ship-to-store order.
    linked_assets: tuple[LinkedAsset, ...] | None = None


@attrs.frozen(kw_only=True)
class Address(ApiModel):
    """A postal address.  Personal data: never log it."""

    #: The name of the person or business at the address.
    name: str
    #: The first line of the street address.
    address_line1: str
    #: The second line of the street address.
    address_line2: str | None = None
    #: The third line of the street address.
    address_line3: str | None = None
    #: The city.
    city: str | None = None
    #: The county.
    county: str | None = None
    #: The district.
    district: str | None = None
    #: The state or region.
    state_or_region: str | None = None
    #: The postal code.
    postal_code: str | None = None
    #: The country, as a two-letter ISO 3166 code.
    country_code: str | None = None
    #: A phone number for the address.
    phone: str | None = None


@attrs.frozen(kw_only=True)
class ServiceLocation(ApiModel):
    """Where the job happens."""

    #: Whether the work happens at the customer's home, in a store or online.
    service_location_type: ServiceLocationType | None = None
    #: Where the work happens (personal data).
    address: Address | None = None


@attrs.frozen(kw_only=True)
class Payment(ApiModel):
    """A payment the buyer made for the job."""

    #: How much was paid.
    amount: MoneyAmount | None = None
    #: How it was paid.
    instrument: str | None = None


@attrs.frozen(kw_only=True)
class ServiceJob(ApiModel):
    """A service job, with its appointments, items, buyer and location."""

    #: When Amazon created the job.
    create_time: datetime | None = None
    #: The job's id, for every call about it.
    service_job_id: str | None = None
    #: Where the job stands (waiting for an appointment, not yet serviced, completed...).
    service_job_status: ServiceJobStatus | None = None
    #: What the customer bought to have done.
    scope_of_work: ScopeOfWork | None = None
    #: The selling partner that sold the service.
    seller: Seller | None = None
    #: The provider that carries out the job.
    service_job_provider: ServiceJobProvider | None = None
    #: Times the customer said suit them.
    preferred_appointment_times: tuple[AppointmentTime, ...] | None = None
    #: The job's appointments, rescheduled ones included.
    appointments: tuple[Appointment, ...] | None = None
    #: The Amazon order of the service.
    service_order_id: str | None = None
    #: Orders of products bought with the service.
    product_order_ids: tuple[str, ...] | None = None
    #: Shipment tracking ids of those products.
    tracking_ids: tuple[str, ...] | None = None
    #: The marketplace the service was sold in.
    marketplace_id: str | None = None
    #: The store that fulfils the job.
    store_id: str | None = None
    #: The customer (personal data).
    buyer: Buyer | None = None
    #: Products bought together with the service.
    associated_items: tuple[AssociatedItem, ...] | None = None
    #: Where the work happens.
    service_location: ServiceLocation | None = None
    #: What the customer paid for the job.
    payments: tuple[Payment, ...] | None = None


@attrs.frozen(kw_only=True)
class JobListing(ApiModel):
    """One page of a job search."""

    #: How many jobs match the search in all.
    total_result_size: int | None = None
    #: The token of the next page; ``None`` on the last page.
    next_page_token: str | None = None
    #: The token of the previous page; ``None`` on the first.
    previous_page_token: str | None = None
    #: The jobs of this page.
    jobs: tuple[ServiceJob, ...] | None = None
