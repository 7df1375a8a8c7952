"""Streaming through the FFI over loopback: a sender and a receiver made from Python, the
way a Swift app makes them, sealed with paired keys."""

import asyncio
import ctypes
import time

import pytest

import tandem_ffi as t
from conftest import Recorder, SenderRecorder, loopback, wait_for


def start_pair(keys, sender_config=None, receiver_config=None, delegate=None):
    rx_delegate = delegate or Recorder()
    rconf = receiver_config or t.ReceiverConfig(net=t.NetConfig(security=keys.second))
    rx = t.Receiver(rconf, t.Remote.LISTEN(), rx_delegate)
    sconf = sender_config or t.SenderConfig(
        source=t.VideoSource.TEST_PATTERN, net=t.NetConfig(security=keys.first)
    )
    tx_delegate = SenderRecorder()
    tx = t.Sender(sconf, loopback(rx.local_port()), tx_delegate)
    return tx, rx, tx_delegate, rx_delegate


def test_the_test_pattern_streams_sealed_with_frames_and_stats(keys):
    tx, rx, tx_seen, seen = start_pair(keys)
    try:
        assert wait_for(lambda: seen.frame_count >= 90, timeout=10), seen.frame_count
        assert wait_for(lambda: any(s.g2g_ms for s in seen.stats), timeout=5)
        frame = seen.frames[-1]
        assert (frame.width(), frame.height()) == (640, 360)
        # The picture carries the sender's frame number and capture time: read back.
        assert frame.pixel_code_frame_id() is not None
        assert 0 < frame.g2g_ms() < 200
        last = [s for s in seen.stats if s.g2g_ms][-1]
        assert last.role == "receiver"
        assert last.secure
        assert last.peer_id == keys.first.identity.fingerprint()
        assert last.frames_shown >= 30
        assert last.decode_ms is not None and last.decode_ms.p50 > 0
        # The receiver shows the bitrate it got beside the sender's target (from its pings).
        assert wait_for(lambda: seen.stats[-1].target_kbps > 0, timeout=3)
        assert seen.stats[-1].delivered_kbps == seen.stats[-1].bitrate_kbps
        assert wait_for(lambda: tx_seen.stats, timeout=3)
        assert tx_seen.stats[-1].role == "sender"
        assert tx_seen.stats[-1].frames_sent > 0
        assert tx.peer() == f"127.0.0.1:{rx.local_port()}"
        assert rx.peer() is not None and rx.error() is None and tx.error() is None
    finally:
        tx.stop()
        rx.stop()
    # Stopped objects say so.
    with pytest.raises(t.TandemError.Stopped):
        tx.local_port()
    with pytest.raises(t.TandemError.Stopped):
        rx.set_playout_policy(t.PlayoutPolicy.LATENCY())
    tx.stop()  # twice is fine


def test_decoded_planes_copy_into_app_memory_once(keys):
    tx, rx, _, seen = start_pair(keys)
    try:
        assert wait_for(lambda: seen.frames, timeout=10)
        frame = seen.frames[0]
    finally:
        tx.stop()
        rx.stop()
    y = frame.layout(t.Plane.Y)
    u = frame.layout(t.Plane.U)
    assert (y.width, y.height, u.width, u.height) == (640, 360, 320, 180)
    assert y.stride >= y.width
    # Into a buffer with a wider stride than the picture: rows land at the stride.
    stride = 704
    buf = (ctypes.c_uint8 * (stride * y.height))()
    frame.copy_plane(t.Plane.Y, ctypes.addressof(buf), stride, len(buf))
    packed = frame.plane_bytes(t.Plane.Y)
    assert len(packed) == y.width * y.height
    for row in (0, 100, y.height - 1):
        got = bytes(buf[row * stride : row * stride + y.width])
        assert got == packed[row * y.width : (row + 1) * y.width]
    # NV12: luma as is, chroma interleaved Cb, Cr.
    luma = (ctypes.c_uint8 * (y.width * y.height))()
    chroma = (ctypes.c_uint8 * (u.width * 2 * u.height))()
    frame.copy_nv12(
        ctypes.addressof(luma), y.width, len(luma), ctypes.addressof(chroma), u.width * 2, len(chroma)
    )
    assert bytes(luma) == packed
    cb, cr = frame.plane_bytes(t.Plane.U), frame.plane_bytes(t.Plane.V)
    assert bytes(chroma[0 : u.width * 2 : 2]) == cb[: u.width]
    assert bytes(chroma[1 : u.width * 2 : 2]) == cr[: u.width]
    # Memory too small, a null address, a stride narrower than the picture: refused, and
    # nothing written.
    small = (ctypes.c_uint8 * 100)()
    with pytest.raises(t.TandemError.InvalidArgument) as e:
        frame.copy_plane(t.Plane.Y, ctypes.addressof(small), 640, len(small))
    assert "need" in e.value.message
    assert bytes(small) == bytes(100)
    with pytest.raises(t.TandemError.InvalidArgument, match="null"):
        frame.copy_plane(t.Plane.Y, 0, 640, 1 << 20)
    with pytest.raises(t.TandemError.InvalidArgument, match="narrower"):
        frame.copy_plane(t.Plane.Y, ctypes.addressof(buf), 100, len(buf))
    del frame
    seen.frames.clear()


def grey_frame(width, height, luma):
    cw, ch = width // 2, height // 2
    return bytes([luma]) * (width * height), bytes([128]) * (cw * ch), bytes([128]) * (cw * ch)


def mean(data):
    return sum(data) / len(data)


def test_app_pictures_i420_and_nv12_reach_the_receiver(keys):
    w, h = 320, 240
    sconf = t.SenderConfig(width=w, height=h, fps=30, net=t.NetConfig(security=keys.first))
    tx, rx, _, seen = start_pair(keys, sender_config=sconf)
    try:
        # Bytes (two copies): a dark picture.
        y, u, v = grey_frame(w, h, 40)
        for _ in range(10):
            tx.submit_i420(w, h, y, u, v)
            time.sleep(0.033)
        assert wait_for(lambda: seen.frames, timeout=10)
        assert abs(mean(seen.frames[-1].plane_bytes(t.Plane.Y)) - 40) < 4
        # From app memory (one copy), three planes with padded strides: a light picture.
        stride, cstride = w + 64, w // 2 + 32
        ybuf = (ctypes.c_uint8 * (stride * h))(*([200] * (stride * h)))
        ubuf = (ctypes.c_uint8 * (cstride * h // 2))(*([128] * (cstride * h // 2)))
        src = lambda b, s: t.PlaneSource(address=ctypes.addressof(b), stride=s, len=len(b))
        count = len(seen.frames)
        for _ in range(10):
            tx.submit_i420_from(w, h, src(ybuf, stride), src(ubuf, cstride), src(ubuf, cstride))
            time.sleep(0.033)
        assert wait_for(lambda: len(seen.frames) > count + 3, timeout=5)
        assert abs(mean(seen.frames[-1].plane_bytes(t.Plane.Y)) - 200) < 4
        # NV12 (a camera's buffer): mid grey with chroma interleaved.
        luma = (ctypes.c_uint8 * (w * h))(*([120] * (w * h)))
        chroma = (ctypes.c_uint8 * (w * h // 2))(*([128] * (w * h // 2)))
        count = len(seen.frames)
        for _ in range(10):
            tx.submit_nv12_from(w, h, src(luma, w), src(chroma, w))
            time.sleep(0.033)
        assert wait_for(lambda: len(seen.frames) > count + 3, timeout=5)
        assert abs(mean(seen.frames[-1].plane_bytes(t.Plane.Y)) - 120) < 4
        # The wrong size, memory too short, a null address: refused, with the reason.
        with pytest.raises(t.TandemError.InvalidArgument, match="configured for 320×240"):
            tx.submit_i420(640, 360, *grey_frame(640, 360, 0))
        with pytest.raises(t.TandemError.InvalidArgument, match="need"):
            tx.submit_nv12_from(w, h, t.PlaneSource(address=ctypes.addressof(luma), stride=w, len=100), src(chroma, w))
        with pytest.raises(t.TandemError.InvalidArgument, match="null"):
            tx.submit_nv12_from(w, h, t.PlaneSource(address=0, stride=w, len=w * h), src(chroma, w))
        with pytest.raises(t.TandemError.Codec):
            tx.submit_i420(w, h, b"short", u, v)
    finally:
        tx.stop()
        rx.stop()
    seen.frames.clear()


def test_encoded_frames_pass_through_byte_exact(keys):
    rconf = t.ReceiverConfig(output=t.OutputMode.ENCODED, net=t.NetConfig(security=keys.second))
    sconf = t.SenderConfig(net=t.NetConfig(security=keys.first))
    tx, rx, told, seen = start_pair(keys, sender_config=sconf, receiver_config=rconf)
    try:
        # A VideoToolbox app waits for the session, and the receiver's first keyframe
        # request, before it sends.
        assert wait_for(tx.is_connected, timeout=5)
        assert wait_for(lambda: told.keyframe_requests >= 1, timeout=5)
        # An H.264 access unit as VideoToolbox would give it after Annex B conversion.
        sent = [bytes([0, 0, 0, 1, 0x67]) + bytes(range(256)) * (1 + i) for i in range(20)]
        ids = []
        for i, data in enumerate(sent):
            if i % 2:
                ids.append(tx.send_encoded(data, t.VideoCodec.H264, i == 0))
            else:
                buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                ids.append(tx.send_encoded_from(ctypes.addressof(buf), len(buf), t.VideoCodec.H264, i == 0))
            time.sleep(0.016)
        assert wait_for(lambda: len(seen.encoded) >= len(sent), timeout=5), len(seen.encoded)
        got = seen.encoded[: len(sent)]
        assert [f.frame_id() for f in got] == ids
        assert [f.data() for f in got] == sent
        assert got[0].keyframe() and not got[1].keyframe()
        assert all(f.display() for f in got)  # in order, nothing late: all for display
        assert got[1].capture_us() > got[0].capture_us()
        assert all(f.codec() == t.VideoCodec.H264 for f in got)
        assert got[3].len() == len(sent[3]) and not got[3].is_empty()
        out = (ctypes.c_uint8 * got[3].len())()
        got[3].copy_to(ctypes.addressof(out), len(out))
        assert bytes(out) == sent[3]
        with pytest.raises(t.TandemError.InvalidArgument):
            got[3].copy_to(ctypes.addressof(out), len(out) - 1)
        with pytest.raises(t.TandemError.InvalidArgument, match="empty"):
            tx.send_encoded(b"", t.VideoCodec.HEVC, True)
        # A decoder that failed asks for a keyframe; the sender's app hears it. And
        # congestion control's targets reach it too, for its encoder's bitrate.
        asked = told.keyframe_requests
        rx.request_keyframe()
        assert wait_for(lambda: told.keyframe_requests > asked, timeout=5)
        for i in range(60):
            tx.send_encoded(bytes(1000), t.VideoCodec.H264, i % 30 == 0)
            time.sleep(0.016)
        assert wait_for(lambda: told.targets, timeout=5), "no target bitrate reported"
        assert all(k >= 50 for k in told.targets)
        assert seen.frames == []  # encoded output only
    finally:
        tx.stop()
        rx.stop()
    seen.encoded.clear()


def test_encoded_frames_before_a_receiver_are_refused(keys):
    tx = t.Sender(t.SenderConfig(net=t.NetConfig(security=keys.first)), t.Remote.LISTEN(), None)
    try:
        assert not tx.is_connected()
        with pytest.raises(t.TandemError.NotConnected, match="no receiver is connected"):
            tx.send_encoded(b"\x00\x00\x00\x01\x65", t.VideoCodec.H264, True)
    finally:
        tx.stop()


def test_the_playout_policy_changes_live_and_stats_can_be_awaited(keys):
    tx, rx, _, seen = start_pair(keys)
    try:
        assert wait_for(lambda: seen.frame_count > 30, timeout=10)

        async def stats_after_policy():
            first = await rx.next_stats()
            rx.set_playout_policy(t.PlayoutPolicy.FIXED(delay_ms=80))
            await rx.next_stats()  # an interval straddling the change
            return first, await rx.next_stats(), await tx.next_stats()

        before, after, sender_stats = asyncio.run(stats_after_policy())
        assert before.g2g_ms.p50 < 40
        assert after.g2g_ms.p50 > 70, after.g2g_ms
        assert sender_stats.role == "sender"
    finally:
        tx.stop()
        rx.stop()

    async def after_stop():
        return await rx.next_stats()

    with pytest.raises(t.TandemError.Stopped):
        asyncio.run(after_stop())


def test_the_rest_of_the_controls_and_metadata(keys):
    # rav1e on screen content with the smooth policy; keyframes on request; the bitrate
    # set by hand; a silent sender reported to the receiver's delegate.
    sconf = t.SenderConfig(
        width=320,
        height=180,
        fps=30,
        bitrate_kbps=800,
        encoder=t.VideoEncoder.RAV1E,
        content=t.ContentKind.SCREEN,
        source=t.VideoSource.TEST_PATTERN,
        stats_interval_ms=200,
        net=t.NetConfig(security=keys.first),
    )
    rconf = t.ReceiverConfig(
        playout=t.PlayoutPolicy.SMOOTH(min_ms=5, max_ms=60),
        stats_interval_ms=200,
        net=t.NetConfig(peer_timeout_ms=1000, security=keys.second),
    )
    tx, rx, tx_seen, seen = start_pair(keys, sender_config=sconf, receiver_config=rconf)
    try:
        assert wait_for(lambda: seen.frame_count >= 20, timeout=15), seen.frame_count
        keyframes = lambda: sum(1 for f in seen.frames if f.keyframe())
        before = keyframes()
        tx.request_keyframe()
        assert wait_for(lambda: keyframes() > before, timeout=5)
        tx.set_bitrate_kbps(400)
        with pytest.raises(t.TandemError.InvalidArgument):
            tx.set_bitrate_kbps(0)
        f = seen.frames[-1]
        assert (f.width(), f.height()) == (320, 180)
        assert f.frame_id() > seen.frames[0].frame_id()
        assert f.capture_us() > seen.frames[0].capture_us()
        assert wait_for(lambda: tx_seen.stats and tx_seen.stats[-1].keyframes >= 2, timeout=3)
        tx.stop()
        assert wait_for(lambda: seen.errors, timeout=5), "the silent sender was not reported"
        assert "has sent nothing for" in seen.errors[0], seen.errors
        assert rx.error() is not None
    finally:
        tx.stop()
        rx.stop()
    seen.frames.clear()


def test_a_plain_session_also_asks_the_app_encoder_to_start():
    # In the clear there is no handshake; reaching the receiver is the moment all the same.
    seen = Recorder()
    rx = t.Receiver(t.ReceiverConfig(output=t.OutputMode.ENCODED), t.Remote.LISTEN(), seen)
    told = SenderRecorder()
    tx = t.Sender(t.SenderConfig(), loopback(rx.local_port()), told)
    try:
        assert wait_for(tx.is_connected, timeout=5)
        assert wait_for(lambda: told.keyframe_requests >= 1 and told.targets, timeout=5)
        tx.send_encoded(b"\x00\x00\x00\x01\x65" + bytes(500), t.VideoCodec.H264, True)
        assert wait_for(lambda: seen.encoded, timeout=5)
        assert seen.stats == [] or not seen.stats[-1].secure
    finally:
        tx.stop()
        rx.stop()
