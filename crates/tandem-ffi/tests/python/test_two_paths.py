"""Sessions over two paths through the FFI: two app transports at once (what a Swift app's
NetworkTransport through the router and WiFiAwareTransport device to device are to the
engine), `duplicate` and a live policy change, one transport failing mid-stream while the
session goes on over the other, and two explicit addresses over the engine's own sockets."""

import threading

import pytest

import tandem_ffi as t
from conftest import Recorder, SenderRecorder, wait_for
from test_transport import UdpTransport


class FailingTransport(UdpTransport):
    """A UDP transport that fails on demand: its `send` raises from then on (`how="send"`),
    or it calls `inbox.fail` from its own thread (`how="inbox"`), as a link that drops does."""

    def __init__(self, sock, reason):
        super().__init__(sock, reason=reason)
        self.failed = threading.Event()
        self.how = None

    def fail(self, how):
        self.how = how
        self.failed.set()
        if how == "inbox":
            inbox = self.inbox
            if inbox is not None:
                threading.Thread(target=inbox.fail, args=(self.reason,), daemon=True).start()

    def send(self, datagrams):
        if self.failed.is_set() and self.how == "send":
            with self.lock:
                self.sends += 1
            raise t.TransportFailure.Failed(self.reason)
        super().send(datagrams)


def transport_pair(reason):
    """Two connected UDP transports, the first able to fail."""
    a, b = UdpTransport.pair()
    return FailingTransport(a.sock, reason), b


def two_path_session(keys, policy, sender_first, sender_second, receiver_first, receiver_second):
    seen, tx_seen = Recorder(), SenderRecorder()
    rx = t.Receiver.over_transports(
        t.ReceiverConfig(stats_interval_ms=200, net=t.NetConfig(security=keys.second)),
        receiver_first,
        receiver_second,
        False,
        seen,
    )
    tx = t.Sender.over_transports(
        t.SenderConfig(
            source=t.VideoSource.TEST_PATTERN,
            fps=30,
            path_policy=policy,
            stats_interval_ms=200,
            net=t.NetConfig(security=keys.first),
        ),
        sender_first,
        sender_second,
        True,
        tx_seen,
    )
    return tx, rx, tx_seen, seen


def show(label, stats):
    for p in stats.paths:
        print(
            f"  {label} path {p.index} {p.state.name.lower()}: {p.datagrams_sent} datagrams / "
            f"{p.bytes_sent} B out, {p.datagrams_received} datagrams / {p.bytes_received} B in, "
            f"{p.duplicates_received} copies, rtt {p.rtt_ms}, failure {p.failure}"
        )


def test_duplicate_carries_every_datagram_on_both_transports(keys):
    base = t.live_objects()
    a1, b1 = UdpTransport.pair()
    a2, b2 = UdpTransport.pair()
    tx, rx, tx_seen, seen = two_path_session(keys, t.PathPolicy.DUPLICATE, a1, a2, b1, b2)
    try:
        assert wait_for(lambda: seen.frame_count >= 60, timeout=10), seen.frame_count
        assert wait_for(lambda: tx_seen.stats and tx_seen.stats[-1].frames_sent >= 60, timeout=5)
        sent, got = tx_seen.stats[-1], seen.stats[-1]
        print(f"\nduplicate over two transports: {seen.frame_count} frames shown; sender transports sent "
              f"{a1.sent} and {a2.sent} datagrams, the receiver's delivered {b1.delivered} and {b2.delivered}")
        show("sender", sent)
        show("receiver", got)
        # Every datagram on both links.
        assert a1.sent > 300 and a2.sent > 300
        assert 0.9 < a2.sent / a1.sent < 1.1, (a1.sent, a2.sent)
        assert b1.delivered > 300 and b2.delivered > 300
        assert sent.path_policy == t.PathPolicy.DUPLICATE and got.path_policy is None
        assert [p.index for p in sent.paths] == [0, 1] and [p.index for p in got.paths] == [0, 1]
        for p in sent.paths:
            assert p.datagrams_sent > 300 and p.bytes_sent > 50_000, p
            assert p.state != t.PathState.CLOSED and p.peer == "app transport", p
            assert p.rtt_ms is not None and p.failure is None, p
        for p in got.paths:
            assert p.datagrams_received > 100 and p.state != t.PathState.CLOSED, p
        assert got.secure and got.error is None and sent.error is None
        assert not seen.errors and not tx_seen.errors, (seen.errors, tx_seen.errors)
        live = t.live_objects()
        assert (live.transports, live.transport_inboxes) == (base.transports + 4, base.transport_inboxes + 4)

        # Live: adaptive from now on. How it spreads them over Python links (whose timing
        # makes them often uncertain, so worth a copy) is printed, not asserted: the engine's
        # tests assert it over sockets.
        tx.set_path_policy(t.PathPolicy.ADAPTIVE)
        before = (a1.sent, a2.sent)
        shown = seen.frame_count
        assert wait_for(lambda: seen.frame_count >= shown + 45, timeout=5)
        assert wait_for(lambda: tx_seen.stats[-1].path_policy == t.PathPolicy.ADAPTIVE, timeout=2)
        more = (a1.sent - before[0], a2.sent - before[1])
        print(f"  switched to adaptive: {more[0]} and {more[1]} datagrams sent on each since")
        assert not seen.errors and not tx_seen.errors, (seen.errors, tx_seen.errors)
    finally:
        tx.stop()
        rx.stop()
    assert (a1.stops, a2.stops, b1.stops, b2.stops) == (1, 1, 1, 1)
    assert wait_for(lambda: t.live_objects().transports == base.transports, timeout=2)


@pytest.mark.parametrize("path,how", [(1, "send"), (0, "inbox")])
def test_one_transport_failing_mid_stream_leaves_the_session_on_the_other(keys, path, how):
    reason = f"the link of path {path} went away (test)"
    failing, far_end = transport_pair(reason)
    other, other_far = UdpTransport.pair()
    sender = [other, other]
    receiver = [other_far, other_far]
    sender[path], receiver[path] = failing, far_end
    tx, rx, tx_seen, seen = two_path_session(keys, t.PathPolicy.DUPLICATE, *sender, *receiver)
    try:
        assert wait_for(lambda: seen.frame_count >= 30, timeout=10), seen.frame_count
        failing.fail(how)
        at_failure = seen.frame_count
        # The video goes on over the other path.
        assert wait_for(lambda: seen.frame_count >= at_failure + 60, timeout=10), (at_failure, seen.frame_count)
        after = seen.frame_count - at_failure
        assert wait_for(
            lambda: tx_seen.stats and tx_seen.stats[-1].paths[path].failure == reason, timeout=3
        ), tx_seen.stats[-1]
        sent = tx_seen.stats[-1]
        print(f"\npath {path} failed by {how}: {after} frames shown since, the session's error: {tx.error()}")
        show("sender", sent)
        show("receiver", seen.stats[-1])
        closed, kept = sent.paths[path], sent.paths[1 - path]
        assert closed.state == t.PathState.CLOSED, closed
        assert kept.state != t.PathState.CLOSED and kept.failure is None, kept
        # Not the session's failure: no error, nothing thrown, the sender still connected.
        assert tx.error() is None and rx.error() is None
        assert sent.error is None and seen.stats[-1].error is None
        assert not tx_seen.errors and not seen.errors, (tx_seen.errors, seen.errors)
        assert tx.is_connected()
        assert wait_for(lambda: failing.stops == 1, timeout=2), "the failed transport is stopped once"
        assert other.stops == 0
    finally:
        tx.stop()
        rx.stop()
    assert (failing.stops, other.stops, far_end.stops, other_far.stops) == (1, 1, 1, 1)


def test_two_addresses_over_the_engines_sockets_and_both_needs_two(keys):
    seen, tx_seen = Recorder(), SenderRecorder()
    rx = t.Receiver(
        t.ReceiverConfig(
            stats_interval_ms=200,
            net=t.NetConfig(security=keys.second, second_local_address="127.0.0.1:0"),
        ),
        t.Remote.LISTEN(),
        seen,
    )
    second = rx.second_local_address()
    assert second is not None and second.startswith("127.0.0.1:")
    tx = t.Sender(
        t.SenderConfig(
            source=t.VideoSource.TEST_PATTERN,
            fps=30,
            path_policy=t.PathPolicy.PRIMARY_BACKUP,
            stats_interval_ms=200,
            net=t.NetConfig(security=keys.first),
        ),
        t.Remote.ADDRESSES(f"127.0.0.1:{rx.local_port()}", second),
        tx_seen,
    )
    try:
        assert tx.second_local_address() is not None
        assert wait_for(lambda: seen.frame_count >= 30, timeout=10), seen.frame_count
        assert wait_for(lambda: tx_seen.stats and tx_seen.stats[-1].frames_sent >= 30, timeout=5)
        sent = tx_seen.stats[-1]
        show("sender", sent)
        assert sent.path_policy == t.PathPolicy.PRIMARY_BACKUP
        assert [p.peer for p in sent.paths] == [f"127.0.0.1:{rx.local_port()}", second]
        assert all(p.datagrams_sent > 0 for p in sent.paths)
        assert not seen.errors and not tx_seen.errors
    finally:
        tx.stop()
        rx.stop()
    # One address names one path.
    with pytest.raises(t.TandemError.InvalidArgument) as e:
        t.Sender(
            t.SenderConfig(net=t.NetConfig(path=t.PathPreference.BOTH, security=keys.first)),
            t.Remote.ADDRESS("127.0.0.1:9"),
            None,
        )
    assert "path `both` needs two paths" in str(e.value)
    with pytest.raises(t.TandemError.InvalidArgument) as e:
        t.Sender(t.SenderConfig(), t.Remote.ADDRESSES("127.0.0.1:9", "nowhere"), None)
    assert "second address `nowhere`" in str(e.value)
