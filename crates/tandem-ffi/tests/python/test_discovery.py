"""Discovery through the FFI: a sender advertises its key's fingerprint, a receiver browses,
recognises it in its trust store and connects to the discovered peer."""

import threading

import pytest

import tandem_ffi as t
from conftest import Recorder, wait_for


class Peers(t.DiscoveryDelegate):
    def __init__(self):
        self.lock = threading.Lock()
        self.found, self.updated, self.lost = [], [], []

    def on_found(self, peer):
        with self.lock:
            self.found.append(peer)

    def on_updated(self, peer):
        with self.lock:
            self.updated.append(peer)

    def on_lost(self, instance, peer_id):
        with self.lock:
            self.lost.append((instance, peer_id))


def test_a_receiver_finds_the_paired_sender_and_streams_from_it(keys):
    discovery = t.Discovery(t.DiscoveryBackend.EMBEDDED)
    assert discovery.backend_name() == "mdns-sd"
    tx = t.Sender(
        t.SenderConfig(source=t.VideoSource.TEST_PATTERN, fps=30, net=t.NetConfig(security=keys.first)),
        t.Remote.LISTEN(),
        None,
    )
    ad = discovery.advertise(tx.local_port(), "FFI sender", keys.first.identity, True)
    peers = Peers()
    browse = discovery.browse(peers)
    rx = None
    try:
        sender_id = keys.first.identity.fingerprint()
        ours = lambda: [p for p in peers.found if p.peer_id == sender_id]
        assert wait_for(ours, timeout=10), "the advertisement was not found"
        peer = ours()[0]
        assert peer.port == tx.local_port() and peer.compatible
        assert peer.device_name == "FFI sender"
        assert t.VideoCodec.AV1 in peer.codecs and peer.addresses
        # The receiver knows the sender by its id: the trust store has its fingerprint.
        assert keys.second.trust.device(peer.peer_id).name == "sender"
        assert wait_for(lambda: ad.registered_name(), timeout=5) == "FFI sender"
        assert any(p.peer_id == sender_id for p in browse.peers())
        seen = Recorder()
        rx = t.Receiver(t.ReceiverConfig(net=t.NetConfig(security=keys.second)), t.Remote.DISCOVERED(peer), seen)
        assert wait_for(lambda: seen.frame_count >= 20, timeout=10), seen.frame_count
        ad.withdraw()
        assert ad.registered_name() is None
        assert wait_for(lambda: any(pid == sender_id for _, pid in peers.lost), timeout=10)
    finally:
        browse.stop()
        if rx:
            rx.stop()
        tx.stop()
    with pytest.raises(t.TandemError.InvalidArgument, match="not 0"):
        discovery.advertise(0, "x", keys.first.identity, True)


def test_the_system_responder_works_or_says_what_is_missing(keys):
    try:
        discovery = t.Discovery(t.DiscoveryBackend.SYSTEM)
    except t.TandemError.Discovery as e:
        # No avahi-daemon (or no libdns_sd) here: the message must say what to install or
        # start; the interop tests in tests/avahi_interop.rs run a private daemon.
        assert "avahi" in e.message or "libavahi-compat-libdnssd1" in e.message, e.message
        pytest.skip(f"system DNS-SD unavailable: {e.message}")
    assert discovery.backend_name() == "dns-sd"
    try:
        ad = discovery.advertise(45678, "FFI system", keys.first.identity, False)
    except t.TandemError.Discovery as e:
        assert "avahi" in e.message, e.message
        pytest.skip(f"avahi-daemon not running: {e.message}")
    peers = Peers()
    browse = discovery.browse(peers, False)
    try:
        fid = keys.first.identity.fingerprint()
        assert wait_for(lambda: any(p.peer_id == fid for p in peers.found), timeout=10)
    finally:
        browse.stop()
        ad.withdraw()
