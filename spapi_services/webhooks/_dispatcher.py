"""Delivering messages to endpoints from one process: attempts, retries, dead letters.

:class:`WebhookDispatcher` keeps its deliveries in memory: what it has not delivered when
the process ends is lost.  That suits a process that publishes what it sees (a change
feed, say) to a receiver that can afford to miss a change, or that publishes again on
start; deliveries that must outlive the process need a durable queue.

Each message becomes one delivery per endpoint that takes it.  A delivery is attempted
when due, at most ``concurrency`` at a time per endpoint; each attempt's outcome decides
the next step (:class:`RetrySchedule`): delivered; retried later; the endpoint held back
(429, 502, 503, 504, with ``Retry-After`` obeyed); the endpoint disabled (410, its
deliveries dead-lettered); or, after the last attempt, dead-lettered.  Dead letters stay
until :meth:`WebhookDispatcher.redeliver` sends them again, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

import attrs

from .._timing import LoopTimer, Timer
from ._addresses import NetworkLike
from ._endpoint import WebhookEndpoint
from ._message import WebhookMessage
from ._schedule import AttemptOutcome, RetrySchedule
from ._sender import DEFAULT_TIMEOUT, AttemptResult, WebhookSender

__all__ = ["Delivery", "DeliveryState", "DispatcherStats", "WebhookDispatcher"]

_log = logging.getLogger("spapi_services.webhooks")


class DeliveryState(enum.Enum):
    """Where a delivery stands."""

    PENDING = "pending"
    """Waiting for its next attempt, or being attempted."""
    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    DEAD = "dead"
    """Given up (attempts spent, or the endpoint disabled): replay it with ``redeliver``."""


@attrs.define(kw_only=True, eq=False)
class Delivery:
    """One message's delivery to one endpoint (read it; the dispatcher changes it).

    ``body`` is what is sent on every attempt; it may hold buyers' personal data.
    """

    #: The message delivered.
    message: WebhookMessage
    #: The id of the endpoint it goes to.
    endpoint_id: str
    #: The bytes sent on every attempt; they may hold buyers' personal data.
    body: bytes = attrs.field(repr=False)
    #: Where the delivery stands: pending, delivered or dead.
    state: DeliveryState = DeliveryState.PENDING
    #: Attempts made so far.
    attempts: int = 0
    #: The receiver's status at the latest attempt (``None``: none yet, or no answer).
    last_status: int | None = None
    #: Why the latest attempt failed, in a few words (``None``: it did not).
    last_error: str | None = None
    #: When the latest attempt was made (``None``: none yet).
    last_attempt_at: datetime | None = None
    due: float = 0.0
    """When the next attempt is due, on the dispatcher's timer's clock."""


@attrs.frozen(kw_only=True)
class DispatcherStats:
    """Counts of a dispatcher's deliveries and attempts since it was made."""

    pending: int
    """Deliveries waiting or being attempted."""
    in_flight: int
    """Attempts under way."""
    #: Deliveries the receivers accepted.
    delivered: int
    #: Attempts made.
    attempts: int
    #: Attempts that did not deliver.
    failed_attempts: int
    dead: int
    """Deliveries dead-lettered and not yet sent again."""
    #: The ids of the endpoints disabled (a receiver answered 410).
    disabled_endpoints: tuple[str, ...]


class WebhookDispatcher:
    """Delivers :class:`WebhookMessage` s to endpoints, retrying on a schedule.

    ::

        endpoint = WebhookEndpoint(url="https://example.com/hooks", secrets=secret)
        async with WebhookDispatcher([endpoint]) as dispatcher:
            await dispatcher.publish(change_message("created", job, seen_at=now))

    :param endpoints: where messages go; each takes those of its seller and types.
    :param schedule: when to retry, and when to give up.
    :param timeout: seconds one attempt may take.
    :param allow_networks: private networks receivers may be on (see :class:`AddressGuard`).
    :param concurrency: attempts at once per endpoint.
    :param timer: the clock and sleep retries are timed by (a test passes a fake one).
    :param sender: the attempts' sender (made from ``timeout`` and ``allow_networks``
        if not given; a sender given is not closed by the dispatcher).
    :param rng: the random source of the schedule's jitter.
    """

    def __init__(
        self,
        endpoints: Iterable[WebhookEndpoint],
        *,
        schedule: RetrySchedule | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        allow_networks: Iterable[NetworkLike] = (),
        concurrency: int = 4,
        timer: Timer | None = None,
        sender: WebhookSender | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoints: dict[str, WebhookEndpoint] = {}
        for index, endpoint in enumerate(endpoints):
            if not isinstance(endpoint, WebhookEndpoint):
                raise TypeError(
                    f"endpoints[{index}]: expected a WebhookEndpoint, got {type(endpoint).__name__}"
                )
            if endpoint.id in self._endpoints:
                raise ValueError(f"endpoints[{index}]: id {endpoint.id!r} is used twice")
            self._endpoints[endpoint.id] = endpoint
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency: must be a whole number >= 1, got {concurrency!r}")
        #: When deliveries are attempted and given up.
        self.schedule = schedule if schedule is not None else RetrySchedule()
        self._timer = timer if timer is not None else LoopTimer()
        self._own_sender = sender is None
        self._sender = sender or WebhookSender(
            timeout=timeout, allow_networks=allow_networks, timer=self._timer
        )
        self._concurrency = concurrency
        self._rng = rng or random.Random()
        self._due: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._blocked: dict[str, list[Delivery]] = defaultdict(list)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._paused_until: dict[str, float] = {}
        self._disabled: dict[str, str] = {}
        self._dead: dict[tuple[str, str], Delivery] = {}
        self._pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = {"delivered": 0, "attempts": 0, "failed": 0}
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"WebhookDispatcher({len(self._endpoints)} endpoints, {self._pending} pending)"

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> WebhookDispatcher:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start delivering in the background (``async with`` does it)."""
        if self._closed:
            raise RuntimeError("this WebhookDispatcher is closed")
        if self._runner is None:
            self._events()
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """Stop: attempts under way are cancelled, and what is pending is dropped (logged
        as a count).  Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pending:
            _log.warning("webhooks: closed with %d deliveries not made", self._pending)
        if self._own_sender:
            await self._sender.aclose()

    # --- what users do -----------------------------------------------------------------

    @property
    def endpoints(self) -> tuple[WebhookEndpoint, ...]:
        """The endpoints, as given."""
        return tuple(self._endpoints.values())

    @property
    def disabled(self) -> dict[str, str]:
        """Endpoints disabled (by a 410), by id, with why."""
        return dict(self._disabled)

    async def publish(self, message: WebhookMessage) -> int:
        """Queue ``message`` for every endpoint that takes it; how many those are.

        Returns at once (delivery happens in the background).  An endpoint that is
        disabled gets the message as a dead letter, for :meth:`redeliver`.
        """
        if not isinstance(message, WebhookMessage):
            raise TypeError(f"message: expected a WebhookMessage, got {type(message).__name__}")
        if self._closed:
            raise RuntimeError("this WebhookDispatcher is closed")
        self._events()
        taken = [e for e in self._endpoints.values() if e.takes(message)]
        now = self._timer.now()
        for endpoint in taken:
            delivery = Delivery(
                message=message, endpoint_id=endpoint.id, body=endpoint.body(message)
            )
            if endpoint.id in self._disabled:
                self._bury(delivery, f"endpoint disabled: {self._disabled[endpoint.id]}")
                continue
            self._pending += 1
            self._schedule(delivery, now + self.schedule.first_delay(self._rng))
        return len(taken)

    async def join(self) -> None:
        """Wait until no delivery is pending (each delivered or dead-lettered)."""
        if self._pending and self._runner is None:
            raise RuntimeError("start the dispatcher first (async with, or start())")
        idle = self._events()[1]
        while self._pending:
            idle.clear()
            await idle.wait()

    def dead_letters(self) -> list[Delivery]:
        """The deliveries given up, oldest first."""
        return list(self._dead.values())

    def redeliver(self, *, message_id: str | None = None, endpoint_id: str | None = None) -> int:
        """Send dead letters again (all, or one message's, or one endpoint's), with their
        ``webhook-id`` unchanged and a fresh schedule; how many.  An endpoint disabled
        is enabled again first if its letters are among them."""
        chosen = [
            key
            for key, delivery in self._dead.items()
            if (message_id is None or delivery.message.id == message_id)
            and (endpoint_id is None or delivery.endpoint_id == endpoint_id)
        ]
        now = self._timer.now()
        for key in chosen:
            delivery = self._dead.pop(key)
            self._disabled.pop(delivery.endpoint_id, None)
            delivery.state, delivery.attempts = DeliveryState.PENDING, 0
            self._pending += 1
            self._schedule(delivery, now)
        return len(chosen)

    def stats(self) -> DispatcherStats:
        """Counts so far."""
        return DispatcherStats(
            pending=self._pending,
            in_flight=sum(self._in_flight.values()),
            delivered=self._counts["delivered"],
            attempts=self._counts["attempts"],
            failed_attempts=self._counts["failed"],
            dead=len(self._dead),
            disabled_endpoints=tuple(self._disabled),
        )

    # --- the loop ------------------------------------------------------------------------

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._wake is None or self._idle is None:
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
        return self._wake, self._idle

    def _schedule(self, delivery: Delivery, due: float) -> None:
        delivery.due = due
        heapq.heappush(self._due, (due, next(self._order), delivery))
        self._events()[0].set()

    async def _run(self) -> None:
        wake = self._events()[0]
        while True:
            wake.clear()
            wait = self._start_due(self._timer.now())
            if wait is None:
                await wake.wait()
            else:
                await self._sleep_unless_woken(wait, wake)

    async def _sleep_unless_woken(self, seconds: float, wake: asyncio.Event) -> None:
        sleeping = asyncio.ensure_future(self._timer.sleep(seconds))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, woken):
                task.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)

    def _start_due(self, now: float) -> float | None:
        """Start every attempt due and allowed; seconds until the next is due (``None``:
        nothing is, until something is published or an attempt ends)."""
        while self._due and self._due[0][0] <= now:
            _, _, delivery = heapq.heappop(self._due)
            endpoint_id = delivery.endpoint_id
            if endpoint_id in self._disabled:
                self._pending -= 1
                self._bury(delivery, f"endpoint disabled: {self._disabled[endpoint_id]}")
                continue
            paused = self._paused_until.get(endpoint_id, 0.0)
            if paused > now:
                self._schedule(delivery, paused)
                continue
            if self._in_flight[endpoint_id] >= self._concurrency:
                self._blocked[endpoint_id].append(delivery)
                continue
            self._in_flight[endpoint_id] += 1
            task = asyncio.get_running_loop().create_task(self._attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._note_idle()
        return max(self._due[0][0] - now, 0.0) if self._due else None

    async def _attempt(self, delivery: Delivery) -> None:
        endpoint = self._endpoints[delivery.endpoint_id]
        try:
            result = await self._sender.attempt(endpoint, delivery.message.id, delivery.body)
        except Exception as exc:  # a bug must not stop every other delivery
            _log.exception("webhooks: attempt to endpoint %s failed unexpectedly", endpoint.id)
            result = AttemptResult(outcome=AttemptOutcome.FAILED, error=type(exc).__name__)
        finally:
            self._in_flight[delivery.endpoint_id] -= 1
            for waiting in self._blocked.pop(delivery.endpoint_id, []):
                self._schedule(waiting, waiting.due)
        self._record(endpoint, delivery, result)
        self._events()[0].set()

    def _record(self, endpoint: WebhookEndpoint, delivery: Delivery, result: AttemptResult) -> None:
        now = self._timer.now()
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = result.status, result.error
        delivery.last_attempt_at = datetime.fromtimestamp(result.timestamp, UTC)
        self._counts["attempts"] += 1
        label = (
            f"webhook {delivery.message.id} ({delivery.message.type}) to endpoint "
            f"{endpoint.id} ({endpoint.origin}), attempt {delivery.attempts}"
        )
        if result.outcome is AttemptOutcome.DELIVERED:
            delivery.state = DeliveryState.DELIVERED
            self._counts["delivered"] += 1
            self._pending -= 1
            self._note_idle()
            _log.debug("%s: delivered (HTTP %s, %.3f s)", label, result.status, result.elapsed)
            return
        self._counts["failed"] += 1
        if result.outcome is AttemptOutcome.GONE:
            self._disable(endpoint, delivery, label)
            return
        pause = self.schedule.endpoint_pause(result.outcome, result.retry_after)
        if pause > 0:
            until = now + pause
            self._paused_until[endpoint.id] = max(self._paused_until.get(endpoint.id, 0), until)
        delay = self.schedule.next_delay(delivery.attempts, result.retry_after, self._rng)
        if delay is None:
            self._pending -= 1
            self._bury(delivery, result.error or "failed")
            _log.warning("%s: %s; no attempts left, dead-lettered", label, result.error)
            return
        _log.info("%s: %s; next attempt in %.0f s", label, result.error, delay)
        self._schedule(delivery, now + delay)

    def _disable(self, endpoint: WebhookEndpoint, delivery: Delivery, label: str) -> None:
        reason = "HTTP 410 Gone"
        self._disabled[endpoint.id] = reason
        _log.warning("%s: %s; endpoint disabled, its deliveries dead-lettered", label, reason)
        self._pending -= 1
        self._bury(delivery, f"endpoint disabled: {reason}")
        # What waits for this endpoint is given up now, not when it falls due.
        kept = []
        for entry in self._due:
            if entry[2].endpoint_id == endpoint.id:
                self._pending -= 1
                self._bury(entry[2], f"endpoint disabled: {reason}")
            else:
                kept.append(entry)
        heapq.heapify(kept)
        self._due = kept
        for waiting in self._blocked.pop(endpoint.id, []):
            self._pending -= 1
            self._bury(waiting, f"endpoint disabled: {reason}")
        self._note_idle()

    def _bury(self, delivery: Delivery, reason: str) -> None:
        delivery.state = DeliveryState.DEAD
        delivery.last_error = reason
        self._dead[(delivery.message.id, delivery.endpoint_id)] = delivery
        self._note_idle()

    def _note_idle(self) -> None:
        if self._pending == 0:
            self._events()[1].set()
