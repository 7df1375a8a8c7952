"""Sessions over a datagram transport the app brings (what a Swift app's Network.framework
connection or Wi-Fi Aware link is to the engine): a transport written in Python over a real
UDP socket on each end, a sealed stream and a pairing over it, and transports that fail
mid-stream, each failure named to the app."""

import asyncio
import socket
import threading

import pytest

import tandem_ffi as t
from conftest import Recorder, SenderRecorder, wait_for


class UdpTransport(t.DatagramTransport):
    """A transport over a connected UDP socket on 127.0.0.1, with a thread of its own that
    reads it and hands each datagram to the inbox, as an app's link delivers from its own
    queue. `fail_after`: sends after which `send` raises TransportFailure.Failed."""

    def __init__(self, sock, fail_after=None, reason="the radio went away (test)"):
        self.sock = sock
        self.fail_after = fail_after
        self.reason = reason
        self.lock = threading.Lock()
        self.inbox = None
        self.reader = None
        self.stopped = threading.Event()
        self.starts = 0
        self.stops = 0
        self.sends = 0
        self.sent = 0
        self.delivered = 0

    @staticmethod
    def pair(fail_after=None):
        """Two transports whose sockets are connected to each other."""
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        b.connect(a.getsockname())
        return UdpTransport(a, fail_after), UdpTransport(b)

    def start(self, inbox):
        with self.lock:
            self.starts += 1
            self.inbox = inbox
        self.sock.settimeout(0.02)
        self.reader = threading.Thread(target=self._read, args=(inbox,), daemon=True)
        self.reader.start()

    def _read(self, inbox):
        while not self.stopped.is_set() and not inbox.is_closed():
            try:
                data = self.sock.recv(2048)
            except (socket.timeout, ConnectionRefusedError):
                continue
            except OSError:
                return
            inbox.deliver(data)
            self.delivered += 1

    def send(self, datagrams):
        with self.lock:
            self.sends += 1
            if self.fail_after is not None and self.sends > self.fail_after:
                raise t.TransportFailure.Failed(self.reason)
        for d in datagrams:
            try:
                self.sock.send(d)
                self.sent += 1
            except OSError:
                pass  # a full buffer or no listener yet drops, as a socket's would

    def stop(self):
        with self.lock:
            self.stops += 1
            self.inbox = None
        self.stopped.set()
        if self.reader is not None:
            self.reader.join(timeout=2)
        self.sock.close()


def over_transports(keys, sender_transport, receiver_transport, tx_seen=None, seen=None, sender_initiates=True):
    """A sealed sender (the test pattern) and a receiver, each over its transport; the
    sender starts the handshake (it opened the link) unless `sender_initiates` is false (the
    receiver did: a Wi-Fi Aware subscriber)."""
    seen = seen or Recorder()
    tx_seen = tx_seen or SenderRecorder()
    rx = t.Receiver.over_transport(
        t.ReceiverConfig(stats_interval_ms=100, net=t.NetConfig(security=keys.second)),
        receiver_transport,
        not sender_initiates,
        seen,
    )
    tx = t.Sender.over_transport(
        t.SenderConfig(
            source=t.VideoSource.TEST_PATTERN,
            stats_interval_ms=100,
            net=t.NetConfig(security=keys.first),
        ),
        sender_transport,
        sender_initiates,
        tx_seen,
    )
    return tx, rx, tx_seen, seen


@pytest.mark.parametrize("initiator", ["sender", "receiver"])
def test_a_sealed_stream_runs_over_app_transports_on_udp_sockets(keys, initiator):
    base = t.live_objects()
    a, b = UdpTransport.pair()
    tx, rx, tx_seen, seen = over_transports(keys, a, b, sender_initiates=initiator == "sender")
    try:
        assert tx.local_address() == "app transport" and tx.local_port() == 0
        assert rx.local_address() == "app transport" and rx.local_port() == 0
        assert wait_for(lambda: seen.frame_count >= 60, timeout=10), seen.frame_count
        assert wait_for(lambda: any(s.frames_shown >= 30 for s in seen.stats), timeout=5)
        frame = seen.frames[-1]
        assert (frame.width(), frame.height()) == (640, 360)
        assert frame.pixel_code_frame_id() is not None
        last = [s for s in seen.stats if s.frames_shown][-1]
        assert last.role == "receiver" and last.secure
        assert last.peer_id == keys.first.identity.fingerprint()
        assert last.peer == "app transport"
        assert last.error is None
        assert wait_for(lambda: tx_seen.stats and tx_seen.stats[-1].frames_sent > 0, timeout=3)
        assert tx_seen.stats[-1].secure and tx_seen.stats[-1].peer == "app transport"
        assert tx.peer() == "app transport" and rx.peer() == "app transport"
        assert tx.is_connected()
        assert tx.error() is None and rx.error() is None
        assert not seen.errors and not tx_seen.errors, (seen.errors, tx_seen.errors)
        live = t.live_objects()
        assert (live.transports, live.transport_inboxes) == (base.transports + 2, base.transport_inboxes + 2)
        print(
            f"\nover UDP transports, the {initiator} initiating: {seen.frame_count} frames shown, {a.sends} sender batches "
            f"({a.sent} datagrams), {b.delivered} delivered to the receiver's inbox"
        )
    finally:
        tx.stop()
        rx.stop()
    assert (a.starts, a.stops, b.starts, b.stops) == (1, 1, 1, 1)
    assert a.inbox is None and b.inbox is None
    del tx, rx
    after = t.live_objects()
    assert (after.transports, after.transport_inboxes) == (base.transports, base.transport_inboxes)


def test_a_pairing_over_transports_gives_keys_a_stream_then_uses():
    code = t.new_pairing_code()
    shower, typer = t.Identity.generate(), t.Identity.generate()
    a, b = UdpTransport.pair()  # a opened the link: it types the code

    async def both():
        show = asyncio.ensure_future(t.pair_over_transport(code, shower, "TV", b, False, None))
        enter = t.pair_over_transport(code, typer, "Phone", a, True, None)
        return await asyncio.gather(show, enter)

    at_shower, at_typer = asyncio.run(both())
    assert at_shower == t.PairedDevice(name="Phone", fingerprint=typer.fingerprint(), public_key=typer.public_key())
    assert at_typer.name == "TV" and at_typer.fingerprint == shower.fingerprint()
    assert (a.stops, b.stops) == (1, 1)

    # What each stored streams, over a fresh link.
    trust_typer, trust_shower = t.TrustStore(), t.TrustStore()
    trust_typer.add(at_typer)
    trust_shower.add(at_shower)
    keys = t.LocalPair(
        first=t.SecurityConfig(identity=typer, trust=trust_typer),
        second=t.SecurityConfig(identity=shower, trust=trust_shower),
    )
    c, d = UdpTransport.pair()
    tx, rx, _, seen = over_transports(keys, c, d)
    try:
        assert wait_for(lambda: seen.frame_count >= 10, timeout=10), seen.frame_count
    finally:
        tx.stop()
        rx.stop()


def test_a_transport_whose_send_fails_ends_the_session_with_its_reason(keys):
    base = t.live_objects()
    a, b = UdpTransport.pair(fail_after=60)
    tx, rx, tx_seen, seen = over_transports(keys, a, b)
    try:
        assert wait_for(lambda: seen.frame_count > 0, timeout=10), "frames before the failure"
        want = "the transport failed: the radio went away (test)"
        assert wait_for(lambda: tx.error() == want, timeout=10), tx.error()
        assert wait_for(lambda: want in tx_seen.errors, timeout=5), tx_seen.errors
        assert wait_for(lambda: tx_seen.stats and tx_seen.stats[-1].error == want, timeout=5)
        # The engine stopped the transport when the session failed: once.
        assert wait_for(lambda: a.stops == 1, timeout=5)
        # The receiver, whose own link is fine, hears nothing more; it is not told the
        # sender's reason (that is the sender's to say).
        assert rx.error() is None or "transport failed" not in rx.error()
    finally:
        tx.stop()
        rx.stop()
    tx.stop()  # twice is fine
    assert (a.starts, a.stops, b.starts, b.stops) == (1, 1, 1, 1)
    del tx, rx
    after = t.live_objects()
    assert (after.transports, after.transport_inboxes) == (base.transports, base.transport_inboxes)


def test_a_transport_that_fails_through_its_inbox_ends_the_receiver_with_its_reason(keys):
    a, b = UdpTransport.pair()
    tx, rx, _, seen = over_transports(keys, a, b)
    try:
        assert wait_for(lambda: seen.frame_count > 0, timeout=10)
        b.inbox.fail("Wi-Fi Aware link lost (test)")
        want = "the transport failed: Wi-Fi Aware link lost (test)"
        assert wait_for(lambda: rx.error() == want, timeout=5), rx.error()
        assert wait_for(lambda: want in seen.errors, timeout=5), seen.errors
        assert wait_for(lambda: b.stops == 1, timeout=5)
        count = seen.frame_count
        assert not wait_for(lambda: seen.frame_count > count + 1, timeout=0.5), "no frames after the failure"
    finally:
        tx.stop()
        rx.stop()
    assert (b.starts, b.stops) == (1, 1)


class Broken(t.DatagramTransport):
    """A transport whose methods raise what they may not: not a TransportFailure."""

    def __init__(self, raise_in):
        self.raise_in = raise_in
        self.stops = 0

    def start(self, inbox):
        if self.raise_in == "start":
            raise RuntimeError("start exploded")

    def send(self, datagrams):
        if self.raise_in == "send":
            raise RuntimeError("send exploded")

    def stop(self):
        self.stops += 1


@pytest.mark.parametrize("raise_in", ["start", "send"])
def test_unexpected_exceptions_in_a_transport_end_the_session_not_the_process(keys, raise_in):
    broken = Broken(raise_in)
    tx = t.Sender.over_transport(
        t.SenderConfig(source=t.VideoSource.TEST_PATTERN, net=t.NetConfig(security=keys.first)),
        broken,
        True,
        None,
    )
    try:
        assert wait_for(lambda: tx.error() is not None and "transport failed" in tx.error(), timeout=5), tx.error()
        assert f"{raise_in} exploded" in tx.error() or raise_in in tx.error(), tx.error()
    finally:
        tx.stop()
    assert broken.stops == 1


def test_a_pairing_over_a_failing_transport_says_why():
    a, _ = UdpTransport.pair(fail_after=0)
    with pytest.raises(t.TandemError.Network, match="the radio went away"):
        asyncio.run(t.pair_over_transport("123456", t.Identity.generate(), "Phone", a, True, None))
    assert a.stops == 1
