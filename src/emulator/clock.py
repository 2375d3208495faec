"""Modelled time for the emulator: the time scale and one discrete-event scheduler.

Real AWS takes time (a NAT gateway is pending for about 90 s, a load balancer provisions for
about 150 s, tasks take about a minute to start). The modules of this launcher model those
states and durations at scale 1, and this module runs them faster by DECKHAND_TIME_SCALE
(0 < s <= 1): a modelled duration of d seconds passes in d * s seconds of wall time.

Events are scheduled at a wall time (`after`) and run in order, each with `now()` equal to the
time it was due, never the time it happened to be noticed. They are run before every request
the server handles (`advance`), so what a request sees is exactly what AWS would show at that
moment, and the timestamps the emulator reports (createdAt of an event, a deployment's
updatedAt) are the modelled ones: (t1 - t0) / SCALE is the modelled duration, however loaded
the machine is. Requests are handled one at a time under LOCK (moto's state is not thread-safe
and Python runs one thread at a time anyway); the latency of DECKHAND_EMULATOR_LATENCY_MS is
waited outside it, so requests still overlap as they do against a real region.

The modules record each modelled state change (`record`); GET /moto-api/deckhand/timeline lists
them with their modelled times, so tests read durations from the emulator's own clock.
"""

import datetime
import heapq
import itertools
import json
import os
import threading
import time


def _scale():
    raw = os.environ.get("DECKHAND_TIME_SCALE") or "1"
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"DECKHAND_TIME_SCALE must be a number in (0, 1], not {raw!r}")
    if not 0 < value <= 1:
        raise SystemExit(f"DECKHAND_TIME_SCALE must be in (0, 1], not {raw!r}")
    return value


SCALE = _scale()
LOCK = threading.RLock()

_queue = []
_sequence = itertools.count()
_running_at = None
_started = time.time()
_timeline = []

TIMELINE_PATH = "/moto-api/deckhand/timeline"


class Event:
    """A scheduled event; `cancel()` keeps it from running."""

    __slots__ = ("due", "action", "cancelled")

    def __init__(self, due, action):
        self.due = due
        self.action = action
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


def scaled(modelled_seconds):
    """The wall seconds a modelled duration takes."""
    return modelled_seconds * SCALE


def now():
    """The current wall time (epoch seconds); inside an event, the time it was due."""
    return _running_at if _running_at is not None else time.time()


def utcnow():
    """`now()` as a naive UTC datetime, the form moto's models keep."""
    return datetime.datetime.fromtimestamp(now(), datetime.timezone.utc).replace(tzinfo=None)


def modelled_since(wall):
    """Modelled seconds from the wall time `wall` to `now()`."""
    return (now() - wall) / SCALE


def after(modelled_seconds, action):
    """Runs `action()` once `modelled_seconds` of modelled time have passed from `now()`."""
    with LOCK:
        event = Event(now() + scaled(modelled_seconds), action)
        heapq.heappush(_queue, (event.due, next(_sequence), event))
        return event


def advance():
    """Runs every event that is due, in order (events may schedule more, which run too if due)."""
    global _running_at
    with LOCK:
        wall = time.time()
        while _queue and _queue[0][0] <= wall:
            due, _, event = heapq.heappop(_queue)
            if event.cancelled:
                continue
            _running_at = due
            try:
                event.action()
            finally:
                _running_at = None


def modelled_now():
    """Modelled seconds since the emulator started, at `now()`."""
    return (now() - _started) / SCALE


def record(kind, resource, state):
    """Puts a modelled state change on the timeline, at `now()` (inside an event: its due time)."""
    with LOCK:
        _timeline.append({"kind": kind, "id": resource, "state": state, "at": modelled_now()})


def timeline():
    """The timeline as GET /moto-api/deckhand/timeline shows it: the scale, the modelled time now,
    and every recorded change in order, each at its modelled time (seconds since the emulator
    started; differences are modelled durations, exact however loaded the machine is)."""
    with LOCK:
        advance()
        return {"scale": SCALE, "now": (time.time() - _started) / SCALE, "events": list(_timeline)}


def clear():
    """Forgets every scheduled event and the timeline (the emulator's state was reset)."""
    with LOCK:
        _queue.clear()
        _timeline.clear()


def install(latency_seconds):
    """Runs due events before every request, one request at a time, after the modelled latency."""
    from moto.moto_api._internal.models import MotoAPIBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original_call = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == TIMELINE_PATH:
            body = json.dumps(timeline()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if latency_seconds > 0 and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(latency_seconds)
        with LOCK:
            advance()
            return original_call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = __call__

    original_reset = MotoAPIBackend.reset

    def reset(self):
        clear()
        return original_reset(self)

    MotoAPIBackend.reset = reset
