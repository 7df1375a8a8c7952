"""Identity and trust-store export and import, pairing as an async call, and the errors a
developer meets, each with the case and message the Swift `throws` carries."""

import asyncio
import socket
import time

import pytest

import tandem_ffi as t
from conftest import Recorder, SenderRecorder, loopback, wait_for


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_identities_and_trust_stores_round_trip_through_bytes():
    me = t.Identity.generate()
    again = t.Identity.from_bytes(me.to_bytes())
    assert again.fingerprint() == me.fingerprint()
    assert again.public_key() == me.public_key() and len(me.public_key()) == 32
    assert len(me.fingerprint()) == 32
    other = t.Identity.generate()
    trust = t.TrustStore()
    assert trust.devices() == []
    device = t.PairedDevice(name="iPad", fingerprint=other.fingerprint(), public_key=other.public_key())
    trust.add(device)
    restored = t.TrustStore.from_bytes(trust.to_bytes())
    assert restored.devices() == [device]
    assert restored.device(other.fingerprint()) == device
    assert restored.device(me.fingerprint()) is None
    assert restored.remove(other.fingerprint())
    assert not restored.remove(other.fingerprint())
    with pytest.raises(t.TandemError.Keys, match="not a Tandem identity"):
        t.Identity.from_bytes(b"garbage")
    with pytest.raises(t.TandemError.Keys):
        t.TrustStore.from_bytes(b"\x00" * 7)
    with pytest.raises(t.TandemError.InvalidArgument, match="32 bytes"):
        trust.add(t.PairedDevice(name="x", fingerprint="", public_key=b"short"))
    assert t.tandem_version() == "0.1.0"
    assert t.protocol_version() == 1


async def pair_both(code_typed, shower_code="135790", port=None, wrong=None):
    port = port or free_port()
    shower, typer = t.Identity.generate(), t.Identity.generate()
    show = t.pair(
        t.PairingRole.SHOW_CODE,
        shower_code,
        shower,
        "Mac",
        t.NetConfig(port=port),
        t.Remote.LISTEN(),
        wrong,
    )
    await asyncio.sleep(0.3)
    enter = t.pair(
        t.PairingRole.ENTER_CODE,
        code_typed,
        typer,
        "iPhone",
        t.NetConfig(),
        loopback(port),
        None,
    )
    results = await asyncio.gather(show, enter, return_exceptions=True)
    return shower, typer, results


def test_pairing_exchanges_keys_and_a_wrong_code_is_refused_on_both_sides():
    shower, typer, (at_shower, at_typer) = asyncio.run(pair_both("135790"))
    assert at_shower == t.PairedDevice(name="iPhone", fingerprint=typer.fingerprint(), public_key=typer.public_key())
    assert at_typer.name == "Mac" and at_typer.fingerprint == shower.fingerprint()

    class Wrong(t.PairingDelegate):
        def __init__(self):
            self.left = []

        def on_wrong_code(self, attempts_left):
            self.left.append(attempts_left)

    wrong = Wrong()

    async def wrong_then_stop():
        port = free_port()
        shower = t.Identity.generate()
        show = asyncio.ensure_future(
            t.pair(t.PairingRole.SHOW_CODE, "135790", shower, "Mac", t.NetConfig(port=port), t.Remote.LISTEN(), wrong)
        )
        await asyncio.sleep(0.3)
        typed = await asyncio.gather(
            t.pair(t.PairingRole.ENTER_CODE, "000000", t.Identity.generate(), "Eve", t.NetConfig(), loopback(port), None),
            return_exceptions=True,
        )
        show.cancel()
        return typed[0]

    typed = asyncio.run(wrong_then_stop())
    assert isinstance(typed, t.TandemError.Pairing), typed
    assert "did not match" in typed.message
    assert wrong.left == [2]
    with pytest.raises(t.TandemError.InvalidArgument, match="fewer than 6 digits"):
        asyncio.run(t.pair(t.PairingRole.SHOW_CODE, "12", t.Identity.generate(), "x", t.NetConfig(), t.Remote.LISTEN(), None))
    code = t.new_pairing_code()
    assert len(code.replace(" ", "")) >= 6 and any(c.isdigit() for c in code)


def test_bad_configs_and_addresses_are_named():
    with pytest.raises(t.TandemError.InvalidArgument, match="641×360"):
        t.Sender(t.SenderConfig(width=641, net=t.NetConfig()), t.Remote.LISTEN(), None)
    with pytest.raises(t.TandemError.InvalidArgument, match="fps"):
        t.Sender(t.SenderConfig(fps=0, net=t.NetConfig()), t.Remote.LISTEN(), None)
    with pytest.raises(t.TandemError.InvalidArgument, match="`nowhere` is not ip:port"):
        t.Receiver(t.ReceiverConfig(net=t.NetConfig()), t.Remote.ADDRESS("nowhere"), Recorder())
    with pytest.raises(t.TandemError.InvalidArgument, match="stats_interval_ms"):
        t.Receiver(t.ReceiverConfig(stats_interval_ms=1, net=t.NetConfig()), t.Remote.LISTEN(), Recorder())
    with pytest.raises(t.TandemError.InvalidArgument, match="peer_timeout_ms"):
        t.Receiver(t.ReceiverConfig(net=t.NetConfig(peer_timeout_ms=0)), t.Remote.LISTEN(), Recorder())
    lonely = t.SecurityConfig(identity=t.Identity.generate(), trust=t.TrustStore(), peer_fingerprint=None)
    with pytest.raises(t.TandemError.NotPaired, match="no paired device"):
        t.Sender(t.SenderConfig(net=t.NetConfig(security=lonely)), loopback(9), None)
    with pytest.raises(t.TandemError.InvalidArgument, match="not in the trust store"):
        t.Sender(
            t.SenderConfig(net=t.NetConfig(security=t.SecurityConfig(identity=t.Identity.generate(), trust=t.TrustStore(), peer_fingerprint="ab"))),
            loopback(9),
            None,
        )
    with pytest.raises(t.TandemError.Network):
        # Port 1 needs privileges nobody gives a test; as root, a port already taken.
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        taken.bind(("0.0.0.0", 0))
        try:
            t.Receiver(t.ReceiverConfig(net=t.NetConfig(port=taken.getsockname()[1])), t.Remote.LISTEN(), Recorder())
        finally:
            taken.close()


def test_an_unpaired_peer_is_refused_and_the_honest_side_told(keys):
    # The receiver trusts only `keys.first`; a stranger with its own keys, which names the
    # receiver's key, gets no session: the receiver counts the refusal, the stranger's
    # delegate hears why.
    seen = Recorder()
    rx = t.Receiver(t.ReceiverConfig(stats_interval_ms=200, net=t.NetConfig(security=keys.second)), t.Remote.LISTEN(), seen)
    stranger_trust = t.TrustStore()
    stranger_trust.add(
        t.PairedDevice(name="receiver", fingerprint="", public_key=keys.second.identity.public_key())
    )
    stranger = t.SecurityConfig(identity=t.Identity.generate(), trust=stranger_trust, peer_fingerprint=None)
    told = SenderRecorder()
    tx = t.Sender(
        t.SenderConfig(source=t.VideoSource.TEST_PATTERN, stats_interval_ms=200, net=t.NetConfig(security=stranger)),
        loopback(rx.local_port()),
        told,
    )
    try:
        assert wait_for(lambda: told.errors, timeout=12), "no error reported to the sender's delegate"
        assert "no answer to the handshake" in told.errors[0]
        assert tx.error() is not None
        assert wait_for(lambda: seen.stats and seen.stats[-1].unpaired_refused > 0, timeout=3)
        assert seen.frame_count == 0
    finally:
        tx.stop()
        rx.stop()
