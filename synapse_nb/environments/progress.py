"""Progress of an environment build: events for the notebook widgets, and a terminal display for the CLI.

A build reports :class:`ProgressEvent` objects to a callback, in phase order::

    resolving -> downloading -> building (sdists only) -> installing -> compiling -> done

:class:`PipProgress` turns the installer's output lines into these events. :func:`terminal_progress` shows them
with ``tqdm`` when it is installed and stderr is a terminal, else as one line per phase. tqdm is optional on
purpose: a build happens once per environment key, so a plain line per phase is enough for logs and CI, and a
new dependency would load for every user to animate a bar most of them never see.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["PHASES", "PipProgress", "ProgressCallback", "ProgressEvent", "terminal_progress"]

PHASES = ("resolving", "downloading", "building", "installing", "compiling", "done")

# Rough share of the whole build each phase ends at, for a single overall fraction.
_PHASE_END = {
    "resolving": 0.1,
    "downloading": 0.45,
    "building": 0.6,
    "installing": 0.85,
    "compiling": 0.99,
    "done": 1.0,
}


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a build: its ``phase``, a human ``message`` and the overall ``fraction`` done (0..1) if known."""

    phase: str
    message: str
    fraction: float | None = None
    plugin: str | None = None
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "message": self.message,
            "fraction": self.fraction,
            "plugin": self.plugin,
            "key": self.key,
        }


ProgressCallback = Callable[[ProgressEvent], None]

_COLLECTING = re.compile(r"^\s*Collecting (\S+)")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)")
_PROCESSING = re.compile(r"^\s*Processing (\S+)")
_SAVED = re.compile(r"^\s*(?:Saved|File was already downloaded) (\S+)")
_BUILDING = re.compile(r"^\s*Building wheel for (\S+)")
_PREPARING = re.compile(r"^\s*(?:Preparing metadata|Getting requirements to build wheel) .*started")
_INSTALLING = re.compile(r"^\s*Installing collected packages: (.+)$")
_INSTALLED = re.compile(r"^\s*Successfully installed (.+)$")


class PipProgress:
    """Feed it the installer's output lines; it sends events to ``callback`` (never raises from a bad line)."""

    def __init__(self, callback: ProgressCallback | None, *, plugin: str | None = None, key: str | None = None):
        self.callback = callback
        self.plugin = plugin
        self.key = key
        self.phase = "resolving"
        self.collected = 0
        self.fetched = 0
        self.fraction = 0.0
        self.last_source: str | None = None

    def emit(self, phase: str, message: str, within: float = 0.0) -> None:
        """Send one event; ``within`` (0..1) is how far into ``phase`` the build is."""
        self.phase = phase
        if self.callback is None:
            return
        index = PHASES.index(phase)
        start = _PHASE_END[PHASES[index - 1]] if index else 0.0
        fraction = start + (_PHASE_END[phase] - start) * max(0.0, min(1.0, within))
        self.fraction = fraction = max(self.fraction, fraction)  # phases may repeat (pip interleaves them)
        self.callback(ProgressEvent(phase, message, round(fraction, 3), self.plugin, self.key))

    def _fetch_share(self) -> float:
        return self.fetched / max(self.collected, 1)

    def feed(self, line: str) -> None:
        """Interpret one line of pip output."""
        if match := _COLLECTING.match(line):
            self.collected += 1
            self.emit("resolving", f"collecting {match.group(1)}", min(self.collected / 20, 0.9))
        elif match := _DOWNLOADING.match(line):
            self.fetched += 1
            self.emit("downloading", f"downloading {match.group(1)}", self._fetch_share())
        elif (match := _PROCESSING.match(line)) or (match := _SAVED.match(line)):
            self.fetched += 1
            name = self.last_source = match.group(1).rstrip("/").rsplit("/", 1)[-1]
            self.emit("downloading", f"using {name}", self._fetch_share())
        elif match := _BUILDING.match(line):
            self.emit("building", f"building {match.group(1)} from source (in the jail)", 0.5)
        elif _PREPARING.match(line):
            self.emit("building", f"preparing {self.last_source or 'an sdist'} (runs its build backend, in the jail)")
        elif match := _INSTALLING.match(line):
            names = [n.strip() for n in match.group(1).split(",") if n.strip()]
            self.emit("installing", f"installing {len(names)} package(s): {', '.join(names)}", 0.1)
        elif match := _INSTALLED.match(line):
            self.emit("installing", f"installed {match.group(1).strip()}", 1.0)


class _LinePrinter:
    """One line per phase (and per package fetched), for logs and terminals without tqdm."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""

    def __call__(self, event: ProgressEvent) -> None:
        if event.phase == self.last and event.phase not in ("downloading", "done"):
            return
        self.last = event.phase
        who = f"{event.plugin}: " if event.plugin else ""
        print(f"{who}{event.phase}: {event.message}", file=self.stream, flush=True)


class _Bar:
    """A tqdm bar over the overall fraction, its description the current phase."""

    def __init__(self, tqdm: Any, stream: IO[str]) -> None:
        self.bar = tqdm(total=1000, file=stream, unit="", bar_format="{desc} {bar} {percentage:3.0f}%", leave=True)

    def __call__(self, event: ProgressEvent) -> None:
        self.bar.set_description_str(f"{event.phase}: {event.message[:60]}")
        if event.fraction is not None:
            self.bar.update(max(0, round(event.fraction * 1000) - self.bar.n))
        if event.phase == "done":
            self.bar.close()


def terminal_progress(stream: IO[str] | None = None) -> ProgressCallback:
    """A progress callback for the command line: a tqdm bar on a terminal if tqdm is installed, else lines."""
    out = stream or sys.stderr
    if out.isatty():
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]  # optional: see the module docstring
        except ImportError:
            pass
        else:
            return _Bar(tqdm, out)
    return _LinePrinter(out)
