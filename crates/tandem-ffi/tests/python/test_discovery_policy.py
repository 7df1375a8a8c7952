"""The discovery policy through the FFI, as the Swift demo uses it: a Discovery told where
the session stands takes its advertisements and browses off peer-to-peer links once an
automatic session is up on infrastructure, and back on when the app keeps them or the
session drops."""

import tandem_ffi as t


class Quiet(t.DiscoveryDelegate):
    def on_found(self, peer):
        pass

    def on_updated(self, peer):
        pass

    def on_lost(self, instance, peer_id):
        pass


def test_the_session_decides_peer_to_peer_discovery():
    discovery = t.Discovery(t.DiscoveryBackend.EMBEDDED)
    assert discovery.peer_to_peer_active(), "on until told otherwise"
    ad = discovery.advertise(47_031, "FFI policy", t.Identity.generate())
    browse = discovery.browse(Quiet())
    try:
        up = t.discovery_session(True, "127.0.0.1:5000")
        assert up == t.DiscoverySession.UP_INFRASTRUCTURE
        assert discovery.set_session(t.PathPreference.AUTOMATIC, up) is False
        assert not discovery.peer_to_peer_active()
        assert discovery.set_keep_peer_to_peer(True) is True
        assert discovery.set_keep_peer_to_peer(False) is False
        gone = t.discovery_session(False, "127.0.0.1:5000")
        assert gone == t.DiscoverySession.CONNECTING
        assert discovery.set_session(t.PathPreference.AUTOMATIC, gone) is True
        assert discovery.set_session(t.PathPreference.INFRASTRUCTURE, t.DiscoverySession.IDLE) is False
        assert discovery.set_session(t.PathPreference.PEER_TO_PEER, up) is True
        assert t.discovery_session(False, None) == t.DiscoverySession.IDLE
        assert ad.registered_name() == "FFI policy"
    finally:
        browse.stop()
        ad.withdraw()
