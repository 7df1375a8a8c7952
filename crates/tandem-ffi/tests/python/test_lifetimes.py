"""Nothing leaks across the boundary: 1,000 create/destroy cycles of every object kind
(sessions over the engine's sockets and over an app's own transport among them) bring the
live-object counts back to where they were, and the process's memory stays flat. And what a
frame copy across the boundary costs, for 720p pictures."""

import ctypes
import gc
import time

import tandem_ffi as t
from conftest import Recorder, loopback, wait_for

CYCLES = 1000


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Quiet(t.SenderDelegate):
    def on_stats(self, stats):
        pass

    def on_error(self, message):
        pass

    def on_warning(self, message):
        pass

    def on_keyframe_requested(self):
        pass

    def on_target_bitrate(self, kbps):
        pass


class NullTransport(t.DatagramTransport):
    """An app transport that carries nothing: it holds the inbox from start to stop (as a
    real one does) and counts the calls; `fail` makes it report a failed link at start."""

    def __init__(self, fail=False):
        self.fail = fail
        self.inbox = None
        self.starts = 0
        self.stops = 0

    def start(self, inbox):
        self.starts += 1
        self.inbox = inbox
        if self.fail:
            inbox.fail("the link failed at once (cycle)")

    def send(self, datagrams):
        pass

    def stop(self):
        self.stops += 1
        self.inbox = None


def one_cycle(i, discovery):
    pair = t.paired_in_process("a", "b")
    again = t.Identity.from_bytes(pair.first.identity.to_bytes())
    store = t.TrustStore.from_bytes(pair.second.trust.to_bytes())
    store.add(t.PairedDevice(name="again", fingerprint="", public_key=again.public_key()))
    # A pipeline every cycle (threads, a socket or an app transport, an encoder or a
    # decoder): senders and receivers, over sockets and over transports, in turn, each with
    # a delegate so the foreign-trait handles are exercised. Every 100th transport session
    # has its link fail at once.
    kind = i % 4
    if kind == 0:
        tx = t.Sender(t.SenderConfig(stats_interval_ms=50, net=t.NetConfig(security=pair.first)), t.Remote.LISTEN(), Quiet())
        tx.local_port()
        tx.stop()
    elif kind == 1:
        rx = t.Receiver(t.ReceiverConfig(stats_interval_ms=50, net=t.NetConfig(security=pair.second)), t.Remote.LISTEN(), Recorder())
        rx.local_port()
        rx.stop()
    else:
        link = NullTransport(fail=i % 100 == 2)
        if kind == 2:
            session = t.Sender.over_transport(t.SenderConfig(stats_interval_ms=50, net=t.NetConfig(security=pair.first)), link, True, Quiet())
        else:
            session = t.Receiver.over_transport(t.ReceiverConfig(stats_interval_ms=50, net=t.NetConfig(security=pair.second)), link, False, Recorder())
        session.local_address()
        session.stop()
        assert (link.starts, link.stops, link.inbox) == (1, 1, None), f"cycle {i}"
    if i % 50 == 0:
        assert len(t.TestPattern(160, 90).i420(i, i)) == 160 * 90 * 3 // 2
        ad = discovery.advertise(40000 + i, f"cycle {i}", again, False)
        browse = discovery.browse(_NoPeers(), False, None)
        browse.peers()
        browse.stop()
        ad.withdraw()


class _NoPeers(t.DiscoveryDelegate):
    def on_found(self, peer):
        pass

    def on_updated(self, peer):
        pass

    def on_lost(self, instance, peer_id):
        pass


def test_a_thousand_create_destroy_cycles_leak_nothing():
    discovery = t.Discovery(t.DiscoveryBackend.EMBEDDED)
    for i in range(50):  # warm-up: allocator arenas, thread stacks, lazy statics
        one_cycle(i, discovery)
    gc.collect()
    base_objects = t.live_objects()
    base_rss = rss_kib()
    start = time.monotonic()
    for i in range(CYCLES):
        one_cycle(i, discovery)
    gc.collect()
    took = time.monotonic() - start
    after = t.live_objects()
    growth_mib = (rss_kib() - base_rss) / 1024
    print(f"\n{CYCLES} cycles in {took:.1f} s; live objects {after}; RSS growth {growth_mib:.1f} MiB")
    # Nothing may be left over; an object an earlier test still held may be released
    # meanwhile (a count going down is not a leak).
    grown = {k: (v, getattr(after, k)) for k, v in vars(base_objects).items() if getattr(after, k) > v}
    assert not grown, f"live objects grew (before, after): {grown}"
    assert after.senders == 0 and after.receivers == 0 and after.browses == 0
    assert after.transports == 0 and after.transport_inboxes == 0 and after.test_patterns == 0
    assert growth_mib < 16, f"RSS grew {growth_mib:.1f} MiB over {CYCLES} cycles"


def test_frames_released_by_the_app_are_freed(keys):
    seen = Recorder(keep=50)
    rx = t.Receiver(t.ReceiverConfig(net=t.NetConfig(security=keys.second)), t.Remote.LISTEN(), seen)
    tx = t.Sender(t.SenderConfig(source=t.VideoSource.TEST_PATTERN, net=t.NetConfig(security=keys.first)), loopback(rx.local_port()), None)
    try:
        assert wait_for(lambda: seen.frame_count >= 100, timeout=10)
    finally:
        tx.stop()
        rx.stop()
    # The 50 kept are alive; the rest were released as soon as the delegate returned.
    assert t.live_objects().decoded_frames == 50
    seen.frames.clear()
    gc.collect()
    assert t.live_objects().decoded_frames == 0


def test_what_a_720p_frame_costs_to_cross():
    pair = t.paired_in_process("sender", "receiver")
    seen = Recorder(keep=8)
    rx = t.Receiver(t.ReceiverConfig(net=t.NetConfig(security=pair.second)), t.Remote.LISTEN(), seen)
    tx = t.Sender(
        t.SenderConfig(width=1280, height=720, fps=30, source=t.VideoSource.TEST_PATTERN, net=t.NetConfig(security=pair.first)),
        loopback(rx.local_port()),
        None,
    )
    try:
        assert wait_for(lambda: len(seen.frames) >= 8, timeout=15)
    finally:
        tx.stop()
        rx.stop()
    frames = seen.frames
    y, u = frames[0].layout(t.Plane.Y), frames[0].layout(t.Plane.U)
    picture = y.width * y.height + 2 * u.width * u.height
    luma = (ctypes.c_uint8 * (y.width * y.height))()
    chroma = (ctypes.c_uint8 * (u.width * 2 * u.height))()
    planes = [(ctypes.c_uint8 * (y.width * y.height))()] + [(ctypes.c_uint8 * (u.width * u.height))() for _ in range(2)]
    rounds = 60

    def timed(fn):
        start = time.perf_counter()
        for r in range(rounds):
            fn(frames[r % len(frames)])
        return (time.perf_counter() - start) / rounds

    def copy_planes(f):
        for plane, buf, lay in zip((t.Plane.Y, t.Plane.U, t.Plane.V), planes, (y, u, u)):
            f.copy_plane(plane, ctypes.addressof(buf), lay.width, len(buf))

    def copy_nv12(f):
        f.copy_nv12(ctypes.addressof(luma), y.width, len(luma), ctypes.addressof(chroma), u.width * 2, len(chroma))

    def as_bytes(f):
        for plane in (t.Plane.Y, t.Plane.U, t.Plane.V):
            f.plane_bytes(plane)

    src = (ctypes.c_uint8 * picture)()
    dst = (ctypes.c_uint8 * picture)()

    def memmove(_):
        ctypes.memmove(dst, src, picture)

    figures = {name: timed(fn) for name, fn in [("memmove (baseline)", memmove), ("copy_plane x3", copy_planes), ("copy_nv12", copy_nv12), ("plane_bytes x3", as_bytes)]}
    base = figures["memmove (baseline)"]
    print(f"\n720p I420 picture = {picture} bytes; per frame, and bytes/s through the FFI:")
    for name, secs in figures.items():
        print(f"  {name:20s} {secs * 1e6:8.1f} µs  {picture / secs / 1e9:6.2f} GB/s  {secs / base:5.2f}x memmove")
    # Correctness of what was timed: the copies hold the last frame's picture.
    last = frames[(rounds - 1) % len(frames)]
    assert bytes(planes[0]) == last.plane_bytes(t.Plane.Y)
    assert bytes(luma) == last.plane_bytes(t.Plane.Y)
    frames.clear()
