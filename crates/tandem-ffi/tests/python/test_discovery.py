"""Discovery through the FFI: a sender advertises its key's fingerprint, a receiver browses,
recognises it in its trust store and connects to the discovered peer."""

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
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


def _first_multicast_interface():
    """A non-loopback interface that is up and multicast-capable, or None."""
    for iface in t.local_interfaces([]):
        if iface.kind is None or not iface.usable:
            continue
        try:
            flags = int(pathlib.Path(f"/sys/class/net/{iface.name}/flags").read_text(), 16)
        except OSError:
            continue
        if flags & 0x1000:  # IFF_MULTICAST
            return iface.name
    return None


@pytest.fixture
def avahi_daemon(tmp_path):
    """A private avahi-daemon on the host's first multicast interface, for the system
    DNS-SD backend (what Bonjour is on Apple): started as root where the packages are
    installed, else the test skips with the reason. The system bus is started if absent
    and left running (it is the machine's)."""
    if os.geteuid() != 0:
        pytest.skip("starting avahi-daemon needs root")
    if not shutil.which("avahi-daemon") or not shutil.which("dbus-daemon"):
        pytest.skip("avahi-daemon or dbus-daemon not installed (apt-get install avahi-daemon dbus)")
    interface = _first_multicast_interface()
    if interface is None:
        pytest.skip("no multicast interface for avahi-daemon")
    bus = "/run/dbus/system_bus_socket"
    if not _answers(bus):
        for stale in (bus, "/run/dbus/pid"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(stale)
        os.makedirs("/run/dbus", exist_ok=True)
        subprocess.run(["dbus-daemon", "--system", "--fork"], check=True, stdout=subprocess.DEVNULL)
        assert wait_for(lambda: _answers(bus), timeout=5), "the system bus does not answer"
    # Another daemon (the system's, or one a killed run left) would own the bus name.
    subprocess.run(["avahi-daemon", "-k"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = lambda: subprocess.run(["avahi-daemon", "-c"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    assert wait_for(lambda: not running(), timeout=5), "a running avahi-daemon did not stop"
    with contextlib.suppress(FileNotFoundError):
        os.remove("/run/avahi-daemon/pid")
    config = tmp_path / "avahi-daemon.conf"
    config.write_text(
        "[server]\nhost-name=tandem-ffi-test\nuse-ipv4=yes\nuse-ipv6=yes\n"
        f"allow-interfaces={interface}\nenable-dbus=yes\n"
        "[wide-area]\nenable-wide-area=no\n[publish]\npublish-hinfo=no\npublish-workstation=no\n"
    )
    log = open(tmp_path / "avahi-daemon.log", "w")
    daemon = subprocess.Popen(
        ["avahi-daemon", "--no-drop-root", "--no-chroot", "--no-rlimits", "-f", str(config)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    try:
        assert wait_for(running, timeout=10), (tmp_path / "avahi-daemon.log").read_text()
        yield interface
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()


def _answers(socket_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(socket_path)
            return True
        except OSError:
            return False


def test_without_a_daemon_the_system_responder_says_what_is_missing():
    running = shutil.which("avahi-daemon") and subprocess.run(
        ["avahi-daemon", "-c"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).returncode == 0
    if running:
        pytest.skip("an avahi-daemon is running here")
    with pytest.raises(t.TandemError.Discovery) as e:
        discovery = t.Discovery(t.DiscoveryBackend.SYSTEM)
        discovery.advertise(45678, "FFI system", t.Identity.generate(), False)
    # The message says what to install or start.
    assert "avahi" in e.value.message, e.value.message


def test_the_system_responder_advertises_and_browses(keys, avahi_daemon):
    discovery = t.Discovery(t.DiscoveryBackend.SYSTEM)
    assert discovery.backend_name() == "dns-sd"
    ad = discovery.advertise(45678, "FFI system", keys.first.identity, False)
    peers = Peers()
    browse = discovery.browse(peers, False)
    try:
        fid = keys.first.identity.fingerprint()
        assert wait_for(lambda: any(p.peer_id == fid for p in peers.found), timeout=10)
        found = [p for p in peers.found if p.peer_id == fid][0]
        assert found.port == 45678 and found.device_name == "FFI system" and found.addresses
        assert wait_for(lambda: ad.registered_name(), timeout=5).startswith("FFI system")
        ad.withdraw()
        assert wait_for(lambda: any(pid == fid for _, pid in peers.lost), timeout=10)
    finally:
        browse.stop()
