"""Loads the UniFFI Python bindings that `cargo xtask test` (or `cargo xtask swift`)
generated from the same library the Swift package links, and shared fixtures."""

import ctypes
import os
import pathlib
import sys
import threading
import time

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[4]
_BINDINGS = pathlib.Path(
    os.environ.get("TANDEM_FFI_PYTHON", _ROOT / "target" / "uniffi" / "python")
)
if not (_BINDINGS / "tandem_ffi.py").exists():
    raise RuntimeError(
        f"no Python bindings at {_BINDINGS}: run `cargo xtask test` (it generates them), "
        "or set TANDEM_FFI_PYTHON"
    )
sys.path.insert(0, str(_BINDINGS))

import tandem_ffi as t  # noqa: E402


def wait_for(predicate, timeout=10.0, step=0.02):
    """Polls `predicate` until it is true or `timeout` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < end:
        time.sleep(step)
        value = predicate()
    return value


class Recorder(t.ReceiverDelegate):
    """A receiver delegate that keeps what it is given (frames up to `keep`)."""

    def __init__(self, keep=10_000):
        self.lock = threading.Lock()
        self.frames = []
        self.encoded = []
        self.stats = []
        self.errors = []
        self.warnings = []
        self.keep = keep
        self.frame_count = 0

    def on_frame(self, frame):
        with self.lock:
            self.frame_count += 1
            if len(self.frames) < self.keep:
                self.frames.append(frame)

    def on_encoded(self, frame):
        with self.lock:
            self.encoded.append(frame)

    def on_stats(self, stats):
        with self.lock:
            self.stats.append(stats)

    def on_error(self, message):
        with self.lock:
            self.errors.append(message)

    def on_warning(self, message):
        with self.lock:
            self.warnings.append(message)


class SenderRecorder(t.SenderDelegate):
    def __init__(self):
        self.stats = []
        self.errors = []
        self.warnings = []
        self.keyframe_requests = 0

        self.targets = []

    def on_keyframe_requested(self):
        self.keyframe_requests += 1

    def on_target_bitrate(self, kbps):
        self.targets.append(kbps)

    def on_stats(self, stats):
        self.stats.append(stats)

    def on_error(self, message):
        self.errors.append(message)

    def on_warning(self, message):
        self.warnings.append(message)


def buffer_address(buf):
    return ctypes.addressof(buf)


@pytest.fixture
def keys():
    """Keys for a sender and a receiver that trust each other."""
    return t.paired_in_process("sender", "receiver")


def loopback(port):
    return t.Remote.ADDRESS(f"127.0.0.1:{port}")
