"""Path choice through the FFI: the interfaces as the engine classifies them, overrides an
app passes (what the Swift layer reads from NWPathMonitor), and the preference binding a
session to the interface of that kind, or a clear error when there is none."""

import pytest

import tandem_ffi as t
from conftest import Recorder


def test_interfaces_are_listed_and_overrides_classify_them():
    listed = t.local_interfaces([])
    loopback = [i for i in listed if i.kind is None]
    assert loopback and "127.0.0.1" in loopback[0].addresses
    others = [i for i in listed if i.kind is not None and i.usable and any("." in a for a in i.addresses)]
    if not others:
        pytest.skip("no usable IPv4 interface besides loopback on this host")
    name = others[0].name
    as_wifi = {i.name: i.kind for i in t.local_interfaces([t.InterfaceOverride(name=name, kind=t.InterfaceKind.WIFI)])}
    assert as_wifi[name] == t.InterfaceKind.WIFI
    as_p2p = {i.name: i.kind for i in t.local_interfaces([t.InterfaceOverride(name=name, kind=t.InterfaceKind.PEER_TO_PEER)])}
    assert as_p2p[name] == t.InterfaceKind.PEER_TO_PEER
    with pytest.raises(t.TandemError.InvalidArgument, match="empty name"):
        t.local_interfaces([t.InterfaceOverride(name="", kind=t.InterfaceKind.WIFI)])


def test_a_preference_binds_the_session_to_that_kind_of_interface():
    listed = [i for i in t.local_interfaces([]) if i.kind is not None and i.usable]
    v4 = [(i, a) for i in listed for a in i.addresses if "." in a]
    if not v4:
        pytest.skip("no usable IPv4 interface besides loopback on this host")
    iface, address = v4[0]
    wifi = [t.InterfaceOverride(name=iface.name, kind=t.InterfaceKind.WIFI)]
    for other in listed:
        if other.name != iface.name:
            wifi.append(t.InterfaceOverride(name=other.name, kind=t.InterfaceKind.OTHER))
    net = t.NetConfig(path=t.PathPreference.INFRASTRUCTURE, interface_kinds=wifi)
    rx = t.Receiver(t.ReceiverConfig(net=net), t.Remote.LISTEN(), Recorder())
    try:
        assert rx.local_address().startswith(address + ":"), (rx.local_address(), address)
    finally:
        rx.stop()
    # No interface of the kind asked for: an error that says so and lists what there is.
    no_p2p = [t.InterfaceOverride(name=i.name, kind=t.InterfaceKind.WIFI) for i in listed]
    with pytest.raises(t.TandemError.Network, match="peer-to-peer"):
        t.Receiver(
            t.ReceiverConfig(net=t.NetConfig(path=t.PathPreference.PEER_TO_PEER, interface_kinds=no_p2p)),
            t.Remote.LISTEN(),
            Recorder(),
        )
