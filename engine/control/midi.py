"""MIDI in → parameter store: python-rtmidi input, mappings, MIDI learn, hot-plug.

Only ``main.py`` and ``gui/`` import this module (the synthesis code never does). It writes to one
:class:`~engine.params.ParamStore` and to counters it owns; the mapping model lives in
:mod:`engine.control.midi_map`.

Ports. :class:`MidiController` always opens a virtual input port named ``"texture in"`` (client
``"texture"``) that any sequencer or MidiOut can connect to, plus, when asked, one hardware/software
source port by name or index (``--midi PORT``). The MIDI API is chosen by trying the compiled-in
APIs in the order CoreMIDI, ALSA, Windows MM, JACK and keeping the first whose client opens (with no
``/dev/snd`` ALSA fails and JACK works when a JACK server runs); ``api=`` forces one. Windows MM
has no virtual ports: there a warning is logged and only the named port is used.

Hot-plug. A watcher thread re-scans the source ports every ``scan_interval`` seconds (0.5). When
the requested port disappears it is closed and logged; when a port with the same name comes back
(also matched when the backend decorates it: ALSA's ``" 20:0"`` address, JACK's ``"-01"`` client
suffix) a fresh input is opened on it and ``stats["reconnects"]`` is incremented. A port that is
unplugged and plugged back within one scan interval keeps its name and is not noticed.

Reading. rtmidi queues what arrives (:data:`QUEUE_MESSAGES` per input) on its backend's thread, which
never calls into Python: a reader thread takes the queued messages every :data:`READ_INTERVAL_SECONDS`
(5 ms). With an rtmidi Python callback instead, the backend's thread (JACK's process thread) had to
take the GIL, and closing a port while messages arrived hung the process (the close holds the GIL
while JACK waits for its process thread, which waits for the GIL) or crashed it (cancelling the
callback frees what a callback already under way reads): a flood at an input closed every 10 ms hung
within 1-3 closes in 5 of 6 runs (``docs/EXPERIMENTS.md`` section 31).

The per-message contract (:meth:`MidiController._on_message`). It runs on the reader thread and
needs the GIL, which it shares with the audio producer: it does O(1) work whatever arrives. It sorts the message by its first
bytes (at most 3 are looked at) and either counts it in an outcome at once, or keeps it as the
latest of its kind (a mapped CC by channel and number, pitch bend by channel, note-on, program
change) in a small dict, replacing and counting as ``coalesced`` the one that waited there. No
parsing of values, no store write, no I/O, no logging. System exclusive never reaches Python:
rtmidi drops it on arrival (``ignore_types(sysex=True)``), like timing clock and active sensing.

The applier thread takes what waits (one swap under a lock) and applies it: mapped CCs and pitch
bend set their parameters, a note-on selects a style slot, a program change goes to
``on_program``. It wakes when the first message of a quiet spell arrives (so a lone CC is applied
at once) and then at most every :data:`APPLY_INTERVAL_SECONDS` (25 ms): the store gets at most one
write per parameter per 25 ms, i.e. at most one per engine block (23 ms at 22050 Hz), whatever
the message rate. A flood therefore costs the producer a bounded amount of GIL time: the
reader's few operations per message and one drain per 25 ms.

Every received message lands in exactly one outcome counter once applied, so ``received ==
applied + learned + ignored_sysex + malformed + unknown + unmapped + coalesced + errors +
pending``:

- ``applied``: a mapped CC / pitch bend set its parameters; a note-on selected a style slot; a
  program change was handed to ``on_program``.
- ``learned``: MIDI learn consumed this CC / pitch bend (its value is applied too).
- ``ignored_sysex``: a lone end of exclusive (``F7``) that got through; sysex itself is dropped
  by rtmidi before it is counted.
- ``malformed``: empty, starts with a data byte, longer than 3 bytes, wrong length for its status,
  data byte >= 0x80.
- ``unknown``: an undefined status byte (F4, F5, F9, FD).
- ``unmapped``: valid but nothing to do (unmapped CC, note-off, aftertouch, start/stop, ...).
- ``coalesced``: replaced by a newer message of its kind before the applier took it (a flood, or
  a fast knob: only the latest value matters).
- ``errors``: an exception escaped (only ``on_program`` can raise here); never propagated.
- ``pending``: waiting for the applier (a gauge, not a counter).

Timing clock, MIDI time code and active sensing are filtered by rtmidi itself and never counted.
Closing. jack2 (1.9.21, and its master today) walks a client's list of ports on the client's notification
thread (the latency callback the server sends every client after each change of the graph) while
``jack_port_unregister``, called by ``close_port()`` on the closing thread, erases from the same list
(jackaudio/jack2 issue 216): closing a port while that notification ran crashed the process now and then (a
segmentation fault inside ``close_port()``, ``docs/EXPERIMENTS.md`` section 56). Each of the controller's
own changes (an input opened, its port opened or closed) sends that notification, so before it closes a port it
waits until :data:`GRAPH_SETTLE_SECONDS` have passed since its last change (a stop right after a start, and
the second of the two inputs a stop closes). A change another JACK client makes at that very moment remains a
risk only jack2 can remove.

rtmidi's JACK input appends every message that follows an unterminated sysex (``F0`` without
``F7``) to that sysex until a message ends with ``F7``, and drops the glued whole, so a device
that never terminates its sysex silences itself until it does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Callable

import rtmidi

from engine.errors import ParameterError, TextureError
from engine.jack_quiet import silence_jack
from engine.control.midi_map import Mapping, MidiMap, load_user_map, save_user_map
from engine.params import ParamStore

silence_jack()  # a dying JACK server must not print libjack's lines through our MIDI client

CLIENT_NAME = "texture"
VIRTUAL_PORT_NAME = "texture in"
API_ORDER = ("core", "alsa", "winmm", "jack")  # platform APIs first, JACK as the fallback
OUTCOMES = ("applied", "learned", "ignored_sysex", "malformed", "unknown", "unmapped", "coalesced", "errors")
#: The applier takes the waiting messages at most this often, in seconds (module doc).
APPLY_INTERVAL_SECONDS = 0.025
#: :meth:`MidiController.stop` waits at most this long for each of its threads, in seconds.
JOIN_TIMEOUT_SECONDS = 2.0
#: The reader thread takes what rtmidi queued this often, in seconds (module doc).
READ_INTERVAL_SECONDS = 0.005
#: Messages rtmidi queues per input between two reads (a burst beyond it is dropped by rtmidi).
QUEUE_MESSAGES = 4096
#: Seconds the controller lets pass after each change it made to the ports (one opened, connected or closed)
#: before it closes a port (module doc, "Closing").
GRAPH_SETTLE_SECONDS = 0.2

_CHANNEL_MESSAGE_LENGTH = {0x8: 3, 0x9: 3, 0xA: 3, 0xB: 3, 0xC: 2, 0xD: 2, 0xE: 3}
_SYSTEM_MESSAGE_LENGTH = {0xF1: 2, 0xF2: 3, 0xF3: 2, 0xF6: 1, 0xF8: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFE: 1, 0xFF: 1}


class MidiStats:
    """Counters of the MIDI reader (see module doc); ``reconnects`` counts hot-plug reopenings."""

    __slots__ = ("received", *OUTCOMES, "reconnects")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        """A copy of every counter."""
        return {name: getattr(self, name) for name in self.__slots__}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C-library chatter on file descriptor 2 while probing APIs (ALSA and JACK print there
    when they are unavailable; the exception already says it). Other threads' stderr is lost
    for that moment."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _api_id(api: str | int) -> int:
    """rtmidi API constant for a name (``"alsa"``, ``"jack"``, ``"core"``, ``"winmm"``) or a constant."""
    compiled = rtmidi.get_compiled_api()
    value = api if isinstance(api, int) else rtmidi.get_compiled_api_by_name(str(api).lower())
    if value not in compiled:
        names = ", ".join(rtmidi.get_api_name(a) for a in compiled)
        raise ParameterError(f"MIDI API {api!r} is not available; compiled in: {names}")
    return value


def _api_candidates(api: str | int | None) -> list[int]:
    if api is not None:
        return [_api_id(api)]
    compiled = rtmidi.get_compiled_api()
    return [a for a in (rtmidi.get_compiled_api_by_name(n) for n in API_ORDER) if a in compiled]


def _port_key(name: str) -> str:
    """A port name without the parts backends change on re-plug: ALSA's trailing ``" 20:0"`` client
    and port numbers, JACK's ``"-01"`` client-name suffix; lower case."""
    name = re.sub(r"\s+\d+:\d+$", "", name)
    name = re.sub(r"-\d{2}:", ":", name, count=1)
    return name.lower()


def match_port(wanted: str, ports: list[str]) -> int | None:
    """Index of the port ``wanted`` names in ``ports``: an exact name, else the same name up to
    re-plug decorations (see :func:`_port_key`), else the first port containing ``wanted``
    (case-insensitive); None when none does."""
    if wanted in ports:
        return ports.index(wanted)
    key = _port_key(wanted)
    for tests in ((lambda p: _port_key(p) == key), (lambda p: wanted.lower() in p.lower())):
        for i, port in enumerate(ports):
            if tests(port):
                return i
    return None


def _new_input(api: int, client: str) -> rtmidi.MidiIn:
    """A MidiIn on ``api`` that queues what arrives (no Python callback: module doc) and drops sysex,
    clock and active sensing before they reach Python."""
    with _quiet_stderr():
        midi_in = rtmidi.MidiIn(api, name=client, queue_size_limit=QUEUE_MESSAGES)
    midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
    return midi_in


class MidiController:
    """MIDI input that drives a :class:`ParamStore` (ports, mappings, learn, hot-plug; module doc).

    Parameters
    ----------
    params : the store to write.
    midi_map : the mappings; None loads the user config (:func:`engine.control.midi_map.load_user_map`).
    slot_ids : returns the current style slot ids in slot order (default: none, so notes are
        unmapped); called on the applier thread for each note-on it applies, so it must be cheap
        and thread-safe (e.g. return a list the app swaps atomically).
    on_program : called on the applier thread with the program number (0..127) of a program change
        (the app loads the session of that number). It must only enqueue or set a flag (e.g.
        ``queue.put_nowait`` or a Qt signal ``emit``), never load files itself. Exceptions are
        counted in ``stats["errors"]``. None: program changes are counted as unmapped.
    port : a source port to open besides the virtual port: a name (matched as :func:`match_port`
        says; waited for when absent) or an index into this API's port list (as
        :func:`list_midi_ports` lists it; a string of digits such as ``"2"`` is an index too).
        None: the virtual port only.
    api : force a MIDI API (``"alsa"``, ``"jack"``, ``"core"``, ``"winmm"``); None picks one (module doc).
    client_name : backend client name of the ports (the virtual port is always ``"texture in"``).
    scan_interval : seconds between port re-scans (hot-plug) and flushes of learned mappings.
    save_learned : after each MIDI learn, the watcher thread (or :meth:`stop`) writes the map to the
        user config and logs the mapping.
    log : receives one-line status messages (port lost / back, learned mappings, warnings); called
        from the caller's thread in :meth:`start` and from the watcher thread afterwards.

    Examples
    --------
    >>> with MidiController(store, port="Launchkey") as midi:   # doctest: +SKIP
    ...     midi.learn("iterations")      # the next CC moved maps to iterations
    """

    def __init__(self, params: ParamStore, *, midi_map: MidiMap | None = None,
                 slot_ids: Callable[[], list[int]] = list, on_program: Callable[[int], None] | None = None,
                 port: str | int | None = None, api: str | int | None = None, client_name: str = CLIENT_NAME,
                 scan_interval: float = 0.5,
                 save_learned: bool = True, log: Callable[[str], None] = print) -> None:
        if isinstance(port, bool) or not (port is None or isinstance(port, (str, int))):
            raise ParameterError(f"MIDI port must be a name, an index or None. Found: {port!r}")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)  # "--midi 2" is an index, not the first name containing "2"
        if not scan_interval > 0:
            raise ParameterError(f"MIDI scan_interval must be > 0 seconds. Found: {scan_interval!r}")
        self._apis = _api_candidates(api)
        self._params = params
        self._map = load_user_map(log=log) if midi_map is None else midi_map
        self._slot_ids = slot_ids
        self._on_program = on_program
        self._port_request = port
        self._client_name = client_name
        self._scan_interval = scan_interval
        self._save_learned = save_learned
        self._log = log
        self._stats = MidiStats()
        self._message_lock = threading.Lock()  # the reader vs the applier's swap: held O(1)
        self._apply_lock = threading.Lock()    # applying vs learn() / set_map()
        self._latest: dict = {}                # coalescing key -> the latest message of that kind
        self._wake = threading.Event()         # set by the reader when _latest was empty
        self._port_lock = threading.Lock()     # guards the rtmidi objects (watcher thread vs stop())
        self._learn_template: Mapping | None = None
        self._learned: Mapping | None = None
        self._learned_event = threading.Event()
        self._save_pending = False
        self._api: int | None = None
        self._main: rtmidi.MidiIn | None = None
        self._virtual = False
        self._wanted: str | None = None
        self._source: rtmidi.MidiIn | None = None
        self._source_name: str | None = None
        self._ever_connected = False
        self._changed_at = -GRAPH_SETTLE_SECONDS  # time.monotonic() of this controller's last change of the ports
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._applier: threading.Thread | None = None
        self._reader: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Pick an API, open the virtual port, open the requested port, start the watcher thread.

        Raises
        ------
        TextureError
            Already started; no MIDI API works here (the message lists each API's error); a port
            index out of range (the message lists the ports). A port *name* that is absent is not
            an error: a warning lists the ports and the watcher opens it when it appears.
        """
        if self._main is not None:
            raise TextureError("the MIDI controller is already started")
        errors = []
        for api in self._apis:
            try:
                self._main = _new_input(api, self._client_name)
                self._api = api
                break
            except rtmidi.RtMidiError as exc:
                errors.append(f"{rtmidi.get_api_name(api)}: {exc}")
        else:
            raise TextureError("no MIDI API works on this machine (" + "; ".join(errors) + ")")
        try:
            self._main.open_virtual_port(VIRTUAL_PORT_NAME)
            self._virtual = True
            self._changed_at = time.monotonic()
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            self._log(f"warning: MIDI API {self.api_name} offers no virtual port ({exc}); use --midi PORT")
        try:
            self._resolve_port_request()
        except TextureError:
            self._close_all()
            raise
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="midi-watcher", daemon=True)
        self._watcher.start()
        self._applier = threading.Thread(target=self._apply_loop, name="midi-applier", daemon=True)
        self._applier.start()
        self._reader = threading.Thread(target=self._read_loop, name="midi-reader", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Stop the watcher, close every port and free the backend clients, save a pending learned
        map. Safe to call twice or without :meth:`start`."""
        self._stop.set()
        self._wake.set()
        for thread in (self._watcher, self._applier, self._reader):
            if thread is not None:
                thread.join(JOIN_TIMEOUT_SECONDS)  # all wake on _stop; the bound is for a backend that hangs
        self._watcher = self._applier = self._reader = None
        self._close_all()
        self._apply_pending()
        self._flush()

    def __enter__(self) -> "MidiController":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- state for the app / GUI
    @property
    def api_name(self) -> str | None:
        """The MIDI API in use (``"alsa"``, ``"jack"``, ...), None before :meth:`start`."""
        return None if self._api is None else rtmidi.get_api_name(self._api)

    @property
    def virtual_port(self) -> str | None:
        """``"texture in"`` while the virtual port is open (backends prefix the client name)."""
        return VIRTUAL_PORT_NAME if self._virtual else None

    @property
    def connected_port(self) -> str | None:
        """Full name of the open source port (``--midi``), None when none is open."""
        return self._source_name

    @property
    def stats(self) -> dict[str, int]:
        """A copy of the counters: ``received``, the outcomes and ``pending`` (module doc), ``reconnects``."""
        with self._apply_lock, self._message_lock:
            return {**self._stats.as_dict(), "pending": len(self._latest)}

    def report(self) -> str:
        """One line for a closing summary: messages received, applied, coalesced and ignored."""
        s = self.stats
        ignored = sum(s[k] for k in ("ignored_sysex", "malformed", "unknown", "unmapped", "errors"))
        return (f"MIDI {s['received']} messages: {s['applied'] + s['learned']} applied, {s['coalesced']} coalesced "
                f"(a newer one of the same kind came first), {ignored} ignored")

    @property
    def midi_map(self) -> MidiMap:
        """The current map (immutable; save it in the session with ``midi_map.to_dict()``)."""
        return self._map

    def set_map(self, midi_map: MidiMap) -> None:
        """Use ``midi_map`` from now on (e.g. loaded from a session); the user config is not written."""
        if not isinstance(midi_map, MidiMap):
            raise ParameterError(f"set_map needs a MidiMap. Found: {midi_map!r}")
        with self._apply_lock:
            self._map = midi_map

    def save_map(self) -> str:
        """Write the current map to the user config file now; returns its path. Raises OSError."""
        return str(save_user_map(self._map))

    # ---------------------------------------------------------------- MIDI learn
    def learn(self, param: str, lo: float | None = None, hi: float | None = None, curve: str = "linear") -> None:
        """Arm MIDI learn: the next CC or pitch bend received (any channel) maps to ``param`` over
        ``[lo, hi]`` (default: the parameter's range) with ``curve``; it replaces the mappings of that
        parameter and of that control (:meth:`MidiMap.assign`), and its value is applied. With
        ``save_learned`` the watcher thread then saves the user config and logs the mapping.

        Raises ParameterError for an unknown parameter, a bad range or curve.
        """
        template = Mapping.full_range("cc", 0, None, param, lo=lo, hi=hi, curve=curve)
        with self._apply_lock:
            self._learned_event.clear()
            self._learn_template = template

    def cancel_learn(self) -> None:
        """Disarm MIDI learn (nothing changes)."""
        with self._apply_lock:
            self._learn_template = None

    @property
    def learning(self) -> str | None:
        """The parameter MIDI learn is armed for, None when not armed (poll it to light a button)."""
        template = self._learn_template
        return None if template is None else template.param

    def wait_learned(self, timeout: float) -> Mapping | None:
        """Block up to ``timeout`` seconds for the armed learn to complete; the new mapping or None."""
        return self._learned if self._learned_event.wait(timeout) else None

    # ---------------------------------------------------------------- reading
    def _read_loop(self) -> None:
        """The reader thread: every :data:`READ_INTERVAL_SECONDS`, hand what each open input queued to
        :meth:`_on_message` (at most :data:`QUEUE_MESSAGES` an input a pass, so a flood cannot hold it)."""
        while not self._stop.wait(READ_INTERVAL_SECONDS):
            with self._port_lock:  # the watcher and stop() close inputs under it: none is read once freed
                for midi_in in (self._main, self._source):
                    if midi_in is not None:
                        self._drain(midi_in)

    def _drain(self, midi_in: rtmidi.MidiIn) -> None:
        """Hand what ``midi_in`` queued to :meth:`_on_message`, at most :data:`QUEUE_MESSAGES` (so a flood cannot
        hold the caller); called under ``_port_lock``."""
        for _ in range(QUEUE_MESSAGES):
            event = midi_in.get_message()
            if event is None:
                break
            self._on_message(event)

    def _on_message(self, event: tuple[list[int], float]) -> None:
        """One message as rtmidi gives it: count, then keep the latest of its kind or count its outcome
        (module doc)."""
        msg = event[0]
        with self._message_lock:
            stats = self._stats
            stats.received += 1
            key, outcome = self._sort(msg)
            if key is None:
                setattr(stats, outcome, getattr(stats, outcome) + 1)
                return
            latest = self._latest
            if not latest:
                self._wake.set()
            elif key in latest:
                stats.coalesced += 1
            latest[key] = msg

    def _sort(self, msg: list[int]) -> tuple[object, str]:
        """``(key, "")`` for a message to apply (its coalescing key), else ``(None, outcome)``; O(1)."""
        if not msg:
            return None, "malformed"
        status = msg[0]
        if status in (0xF0, 0xF7):
            return None, "ignored_sysex"
        if status < 0x80 or len(msg) > 3 or any(b > 0x7F for b in msg[1:]):
            return None, "malformed"
        if status > 0xF0:
            expected = _SYSTEM_MESSAGE_LENGTH.get(status)
            if expected is None:
                return None, "unknown"
            return None, "unmapped" if len(msg) == expected else "malformed"
        kind = status >> 4
        if len(msg) != _CHANNEL_MESSAGE_LENGTH[kind]:
            return None, "malformed"
        learning = self._learn_template is not None
        if kind == 0xB and (learning or self._map.routes("cc", msg[1])):
            return (status, msg[1]), ""
        if kind == 0xE and (learning or self._map.routes("pitchbend", 0)):
            return status, ""
        if kind == 0x9 and msg[2] > 0:
            return 0x90, ""
        if kind == 0xC and self._on_program is not None:
            return 0xC0, ""
        return None, "unmapped"

    def _apply_loop(self) -> None:
        """The applier thread: wake on the first message of a quiet spell, apply what waits, then rest
        :data:`APPLY_INTERVAL_SECONDS` so the store is written at most that often per parameter."""
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self._apply_pending()
            self._stop.wait(APPLY_INTERVAL_SECONDS)

    def _apply_pending(self) -> None:
        """Apply every waiting message (taken in one swap) and count each in its outcome."""
        with self._apply_lock:  # lock order everywhere: _apply_lock, then _message_lock
            with self._message_lock:
                pending, self._latest = self._latest, {}
            counts: dict[str, int] = {}
            writes: dict[str | int, float] = {}
            for msg in pending.values():
                try:
                    outcome = self._apply(msg, writes)
                except Exception:  # noqa: BLE001 - the applier must survive anything; it is counted
                    outcome = "errors"
                counts[outcome] = counts.get(outcome, 0) + 1
            self._write(writes)
            with self._message_lock:
                for outcome, n in counts.items():
                    setattr(self._stats, outcome, getattr(self._stats, outcome) + n)

    def _apply(self, msg: list[int], writes: dict[str | int, float]) -> str:
        """Apply one message :meth:`_sort` kept: its store writes go into ``writes`` (parameter name
        or slot id -> value; a later message of the same drain overrides); returns its outcome."""
        status = msg[0]
        kind, channel = status >> 4, (status & 0x0F) + 1
        if kind == 0xB:
            return self._control("cc", msg[1], msg[2] / 127.0, channel, writes)
        if kind == 0xE:
            return self._control("pitchbend", 0, (msg[1] | msg[2] << 7) / 16383.0, channel, writes)
        if kind == 0x9:
            return self._select_slot(msg[1], msg[2], writes)
        self._on_program(msg[1])
        return "applied"

    def _write(self, writes: dict[str | int, float]) -> None:
        """One store write per parameter (``set``) and per slot weight (``set_blend``) of a drain:
        parameters first, then slot weights (a note and a morph move in one drain: the note's slot
        selection wins). The values come from validated mappings, so the store never refuses them."""
        for key, value in sorted(writes.items(), key=lambda kv: isinstance(kv[0], int)):
            if isinstance(key, int):
                self._params.set_blend(key, value)
            else:
                self._params.set(key, value)

    def _control(self, kind: str, number: int, x: float, channel: int, writes: dict[str | int, float]) -> str:
        template = self._learn_template
        if template is not None:
            learned = dataclasses.replace(template, kind=kind, number=number)
            self._map = self._map.assign(learned)
            self._learn_template = None
            self._learned = learned
            self._learned_event.set()
            self._save_pending = self._save_learned
            writes[learned.param] = learned.value(x)
            return "learned"
        routes = [m for m in self._map.routes(kind, number) if m.matches(channel)]
        for m in routes:
            writes[m.param] = m.value(x)
        return "applied" if routes else "unmapped"

    def _select_slot(self, note: int, velocity: int, writes: dict[str | int, float]) -> str:
        """Note ``note_base + i`` selects slot ``i`` (wrapping): its weight 1 (or velocity / 127), others 0."""
        ids = list(self._slot_ids())
        if not ids:
            return "unmapped"
        chosen = (note - self._map.note_base) % len(ids)
        weight = velocity / 127.0 if self._map.note_velocity else 1.0
        for i, slot in enumerate(ids):
            writes[slot] = weight if i == chosen else 0.0
        return "applied"

    # ---------------------------------------------------------------- ports and hot-plug
    def _resolve_port_request(self) -> None:
        request = self._port_request
        if request is None:
            return
        ports = self._main.get_ports()
        if isinstance(request, int):
            if not 0 <= request < len(ports):
                raise TextureError(f"MIDI port index {request} is out of range; {self.api_name} inputs: "
                                   + (", ".join(f"{i}: {p}" for i, p in enumerate(ports)) or "none"))
            self._wanted = ports[request]
        else:
            self._wanted = request
        self.poll_ports()
        if self._source is None:
            self._log(f"warning: MIDI port {request!r} not found ({self.api_name} inputs: "
                      f"{', '.join(ports) or 'none'}); it will be opened when it appears")

    def poll_ports(self) -> None:
        """Re-scan the source ports once: close the requested port if it vanished, (re)open it when it
        is there. The watcher thread calls this every ``scan_interval``; it is public for tests."""
        if self._wanted is None:
            return
        with self._port_lock:
            if self._main is None:
                return
            ports = self._main.get_ports()
            if self._source is not None:
                if self._source_name in ports:
                    return
                self._log(f"MIDI port {self._source_name!r} disappeared; waiting for it to come back")
                self._close_input(self._source)
                self._source, self._source_name = None, None
            index = match_port(self._wanted, ports)
            if index is None or not self._open_source(ports[index]):
                return
            if self._ever_connected:
                self._stats.reconnects += 1
                self._log(f"MIDI port {self._source_name!r} is back; reconnected")
            self._ever_connected = True

    def _open_source(self, name: str) -> bool:
        """Open a fresh input on port ``name`` (a reused MidiIn does not reliably reconnect on JACK)."""
        source = _new_input(self._api, f"{self._client_name} source")
        ports = source.get_ports()
        if name not in ports:  # vanished between the scan and now: try again at the next scan
            self._close_input(source)
            return False
        try:
            source.open_port(ports.index(name), "source in")
        except rtmidi.InvalidPortError:  # the list changed between the two reads (a client closing): next scan
            self._close_input(source)
            return False
        self._changed_at = time.monotonic()
        self._source, self._source_name = source, name
        return True

    def _close_input(self, midi_in: rtmidi.MidiIn) -> None:
        """Close the port and free the backend client (JACK/ALSA names are released), once
        :data:`GRAPH_SETTLE_SECONDS` have passed since this controller's last change of the ports (module doc,
        "Closing"); waits at most that long, taking in what the input receives meanwhile (a flood would
        otherwise fill rtmidi's queue, which then prints a line per message dropped)."""
        while (left := self._changed_at + GRAPH_SETTLE_SECONDS - time.monotonic()) > 0:
            time.sleep(min(left, READ_INTERVAL_SECONDS))
            self._drain(midi_in)
        midi_in.close_port()
        midi_in.delete()
        self._changed_at = time.monotonic()

    def _close_all(self) -> None:
        with self._port_lock:
            source, main = self._source, self._main
            self._source = self._source_name = self._main = None  # nothing reads them once they are freed
            self._virtual = False
            for midi_in in (source, main):
                if midi_in is not None:
                    self._close_input(midi_in)

    def _watch(self) -> None:
        last_error = ""
        while not self._stop.wait(self._scan_interval):
            try:
                self.poll_ports()
            except Exception as exc:  # noqa: BLE001 - keep watching; report each new problem once
                if str(exc) != last_error:
                    self._log(f"warning: MIDI port scan failed: {exc}")
                    last_error = str(exc)
            self._flush()

    def _flush(self) -> None:
        """Outside the reader: save the map after a learn (with ``save_learned``) and log it."""
        if not self._save_pending:
            return
        self._save_pending = False
        learned = self._learned
        try:
            self._log(f"MIDI learn: {learned.describe()} (saved to {self.save_map()})")
        except OSError as exc:
            self._log(f"warning: MIDI learn: {learned.describe()}, but the map could not be saved: {exc}")


def list_midi_ports(api: str | int | None = None) -> dict[str, list[str]]:
    """MIDI source ports per working API: ``{"jack": ["a2j:Launchkey [20] (capture): ...", ...]}``.

    For ``python main.py devices``: print each API name and its ports with their indices (the index
    is what ``--midi N`` takes; a name, or part of one, works too). APIs whose client cannot open
    (no ALSA sequencer, no JACK server) are left out, so the result may be empty. ``api`` limits
    the scan to one API (ParameterError when it is not compiled in).
    """
    result: dict[str, list[str]] = {}
    for api_id in _api_candidates(api):
        try:
            with _quiet_stderr():
                midi_in = rtmidi.MidiIn(api_id, name=f"{CLIENT_NAME} scan")
        except rtmidi.RtMidiError:
            continue
        try:
            result[rtmidi.get_api_name(api_id)] = midi_in.get_ports()
        finally:
            midi_in.delete()
    return result


def open_midi(params: ParamStore, slot_ids: Callable[[], list[int]], port: str | None, *,
              log: Callable[[str], None], on_program: Callable[[int], None] | None = None) -> MidiController:
    """MIDI input for ``params``, started: the virtual ``"texture in"`` port plus ``port`` (index or
    name) if given. ``slot_ids``, ``on_program`` and ``log`` as for :class:`MidiController`.
    ``play --no-gui`` (main.py) and the window (gui/app.py) both open MIDI here.

    Raises
    ------
    TextureError
        When it cannot: no MIDI API works here, a bad port, or a backend error (whatever the
        backend raised, as one line).
    """
    try:
        controller = MidiController(params, slot_ids=slot_ids, port=port, on_program=on_program, log=log)
        controller.start()
    except TextureError:
        raise
    except Exception as exc:  # noqa: BLE001 - a backend error is one line too
        raise TextureError(f"{type(exc).__name__}: {exc}") from exc
    return controller


def cli_learn(params: ParamStore | None, param: str, timeout: float, port: str | int | None, *,
              lo: float | None = None, hi: float | None = None, curve: str = "linear",
              api: str | int | None = None, log: Callable[[str], None] = print) -> Mapping:
    """MIDI learn from the command line: wait for one CC / pitch bend and map it to ``param``.

    Opens a :class:`MidiController` (virtual port ``"texture in"`` plus ``port`` if given), logs
    what to do, waits up to ``timeout`` seconds, saves the user config
    (:func:`engine.control.midi_map.user_map_path`) and returns the new mapping. ``params`` may be None (a
    scratch store is used; the learned value is not kept). ``python main.py midi-learn PARAM [--midi PORT]
    [--timeout S]`` calls it with the parameter's full range and a linear curve (the command line has
    no options for ``lo``, ``hi`` and ``curve``); main.py prints TextureError as its one-line failure.

    Raises
    ------
    ParameterError
        Unknown parameter, bad range or curve, timeout ≤ 0.
    TextureError
        No MIDI API works, bad port index, or nothing arrived within ``timeout``.
    OSError
        The user config cannot be written.
    """
    if not timeout > 0:
        raise ParameterError(f"MIDI learn timeout must be > 0 seconds. Found: {timeout!r}")
    controller = MidiController(params if params is not None else ParamStore(), port=port, api=api,
                                save_learned=False, log=log)
    controller.learn(param, lo=lo, hi=hi, curve=curve)
    with controller:
        source = f"port {controller.connected_port!r} or " if controller.connected_port else ""
        log(f"Move a control (CC or pitch bend) to map it to {param}: listening on {source}"
            f"{controller.api_name} port {VIRTUAL_PORT_NAME!r} for {timeout:g} s")
        mapping = controller.wait_learned(timeout)
    if mapping is None:
        raise TextureError(f"no MIDI control change or pitch bend arrived within {timeout:g} s "
                           "(check the port with: python main.py devices)")
    path = controller.save_map()
    log(f"MIDI learn: {mapping.describe()} (saved to {path})")
    return mapping
