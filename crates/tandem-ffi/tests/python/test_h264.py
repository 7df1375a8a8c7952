"""H.264 through the FFI. The engine's own OpenH264 encoder, decoded by the receiver and, as
encoded output, framed the way the Swift layer's `SampleBufferAssembler` needs; and a foreign
encoder's stream (x264, standing in for VideoToolbox) sent access unit by access unit with
`send_encoded`, decoded by the receiver with every shown frame's pixel code read back."""

import shutil
import subprocess
import time

import pytest

import tandem_ffi as t
from conftest import Recorder, SenderRecorder, loopback, wait_for

W, H, FPS = 640, 360, 60

# NAL unit types (ITU-T H.264 table 7-1).
NON_IDR, IDR, SEI, SPS, PPS, AUD = 1, 5, 6, 7, 8, 9
SLICES = (NON_IDR, IDR)


def nal_units(data):
    """The NAL units of an Annex B stream: (start code offset, start code length, unit) for
    each, the unit without its start code. Both 3- and 4-byte start codes; zero bytes before
    a start code are dropped (a NAL unit never ends in one), as `AnnexB.units` does."""
    units = []
    at = data.find(b"\0\0\1")
    while at != -1:
        begin = at + 3
        following = data.find(b"\0\0\1", begin)
        unit = data[begin : len(data) if following == -1 else following].rstrip(b"\0")
        four = at > 0 and data[at - 1] == 0
        if unit:
            units.append((at - 1 if four else at, 4 if four else 3, unit))
        at = following
    return units


def kind(unit):
    return unit[0] & 0x1F


def first_slice_of_picture(unit):
    # first_mb_in_slice is the slice header's first field, ue(v): its first bit is 1 only
    # for 0 (no encoder here uses arbitrary slice order).
    return kind(unit) in SLICES and unit[1] & 0x80 != 0


def access_units(stream):
    """Splits an Annex B stream into access units (H.264 7.4.1.2.3): one starts at an access
    unit delimiter, SPS, PPS or SEI, or at the first slice of a picture, once the current
    one has a slice. Returns each as the stream's own bytes (start codes as the encoder
    wrote them) with its units."""
    found, start, units, has_slice = [], 0, [], False
    for offset, _, unit in nal_units(stream):
        starts_one = kind(unit) in (SEI, SPS, PPS, AUD) or 14 <= kind(unit) <= 18
        if has_slice and (starts_one or first_slice_of_picture(unit)):
            found.append((stream[start:offset], units))
            start, units, has_slice = offset, [], False
        units.append(unit)
        has_slice |= kind(unit) in SLICES
    if units:
        found.append((stream[start:], units))
    return found


class Assembler:
    """The decisions of the Swift layer's `SampleBufferAssembler.assemble` (SampleBuffer.swift),
    without CoreMedia: parameter sets (SPS, PPS) taken from the frame make the format
    description when they differ from the last ones; access unit delimiters are dropped;
    every other unit of the frame (all its slices, SEI) goes into one sample; nothing comes
    out before a format exists. Counts the format descriptions it would make."""

    def __init__(self):
        self.sets = None
        self.formats = 0

    def sample(self, data):
        units = [u for _, _, u in nal_units(data)]
        sets = [u for u in units if kind(u) in (SPS, PPS)]
        payload = [u for u in units if kind(u) not in (SPS, PPS, AUD)]
        if sets and sets != self.sets:
            self.sets = sets
            self.formats += 1
        if self.sets is None or not payload:
            return None
        return payload


class Codes(Recorder):
    """Keeps each shown frame's (engine frame id, pixel code frame id, keyframe), not the
    frame itself."""

    def __init__(self):
        super().__init__()
        self.shown = []

    def on_frame(self, frame):
        with self.lock:
            self.frame_count += 1
            self.shown.append((frame.frame_id(), frame.pixel_code_frame_id(), frame.keyframe()))


def start_pair(keys, sender_config, receiver_config, delegate):
    rx = t.Receiver(receiver_config, t.Remote.LISTEN(), delegate)
    told = SenderRecorder()
    tx = t.Sender(sender_config, loopback(rx.local_port()), told)
    return tx, rx, told


def test_the_engine_encodes_h264_that_its_receiver_decodes_with_every_pixel_code(keys):
    seen = Codes()
    sconf = t.SenderConfig(
        encoder=t.VideoEncoder.OPEN_H264,
        source=t.VideoSource.TEST_PATTERN,
        stats_interval_ms=200,
        net=t.NetConfig(security=keys.first),
    )
    rconf = t.ReceiverConfig(stats_interval_ms=200, net=t.NetConfig(security=keys.second))
    tx, rx, _ = start_pair(keys, sconf, rconf, seen)
    try:
        assert wait_for(lambda: seen.frame_count >= 120, timeout=10), seen.frame_count
        assert wait_for(lambda: any(s.g2g_ms for s in seen.stats), timeout=3)
    finally:
        tx.stop()
        rx.stop()
    with seen.lock:
        shown = list(seen.shown)
    read = [c for _, c, _ in shown if c is not None]
    print(f"\nOpenH264 decoded: {len(shown)} frames shown, {len(read)} pixel codes read")
    assert len(read) == len(shown)
    # The test pattern numbers its pictures in the order the engine sends them.
    assert [c for c in read] == sorted(read) and len(set(read)) == len(read)
    last = [s for s in seen.stats if s.g2g_ms][-1]
    assert last.codec == "H.264"
    assert last.decode_ms is not None and 0 < last.g2g_ms.p50 < 200


def test_engine_h264_is_framed_as_the_swift_assembler_needs(keys):
    # Encoded output: the frames exactly as a VideoToolbox app gets them.
    seen = Recorder()
    sconf = t.SenderConfig(
        encoder=t.VideoEncoder.OPEN_H264, source=t.VideoSource.TEST_PATTERN, net=t.NetConfig(security=keys.first)
    )
    rconf = t.ReceiverConfig(output=t.OutputMode.ENCODED, net=t.NetConfig(security=keys.second))
    tx, rx, _ = start_pair(keys, sconf, rconf, seen)
    try:
        assert wait_for(lambda: len(seen.encoded) >= 30, timeout=10)
        tx.request_keyframe()  # a second IDR, as after a receiver's request
        assert wait_for(lambda: sum(1 for f in seen.encoded if f.keyframe()) >= 2, timeout=5)
        assert wait_for(lambda: len(seen.encoded) >= 90, timeout=5)
    finally:
        tx.stop()
        rx.stop()
    with seen.lock:
        frames = list(seen.encoded)
    seen.encoded.clear()
    assert all(f.codec() == t.VideoCodec.H264 for f in frames)
    assembler = Assembler()
    slice_counts = set()
    keyframe_sets = []
    for f in frames:
        data = f.data()
        units = nal_units(data)
        kinds = [kind(u) for _, _, u in units]
        # Four-byte start codes throughout, one access unit (one picture) per frame.
        assert all(length == 4 for _, length, _ in units), kinds
        assert len(access_units(data)) == 1, kinds
        slices = [u for _, _, u in units if kind(u) in SLICES]
        assert first_slice_of_picture(slices[0]) and not any(first_slice_of_picture(u) for u in slices[1:])
        slice_counts.add(len(slices))
        if f.keyframe():
            # SPS and PPS first, then IDR slices only.
            assert kinds[:2] == [SPS, PPS] and set(kinds[2:]) == {IDR}, kinds
            keyframe_sets.append([u for _, _, u in units[:2]])
        else:
            assert set(kinds) == {NON_IDR}, kinds
        payload = assembler.sample(data)
        # Every frame from the first keyframe on is one sample holding all its slices.
        assert payload == slices
    print(
        f"\nOpenH264 encoded: {len(frames)} frames, {len(keyframe_sets)} keyframes, "
        f"slices a frame {sorted(slice_counts)}, format descriptions {assembler.formats}"
    )
    assert frames[0].keyframe() and len(keyframe_sets) >= 2
    # The same parameter sets on every keyframe: one format description, no format change.
    assert all(s == keyframe_sets[0] for s in keyframe_sets) and assembler.formats == 1
    assert max(slice_counts) <= 4


def x264_stream(tmp_path, frames, options):
    """The test pattern's pictures 0 … frames-1 (each stamped with its number) encoded by
    the x264 command-line tool with `options`: raw Annex B."""
    out = tmp_path / "x264.264"
    cmd = [
        "x264", "--quiet", "--demuxer", "raw", "--input-csp", "i420", "--input-res", f"{W}x{H}",
        "--fps", str(FPS), "--preset", "veryfast", "--tune", "zerolatency", "--bframes", "0",
        "--keyint", str(FPS), "--bitrate", "1500", "--vbv-maxrate", "1500", "--vbv-bufsize", "50",
        *options, "-o", str(out), "-",
    ]  # fmt: skip
    pattern = t.TestPattern(W, H)
    log = tmp_path / "x264.log"
    with open(log, "wb") as err:
        encoder = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        # The pattern's own timeline as capture times: glass-to-glass means nothing for a
        # stream encoded ahead of time; the frame numbers are what is checked.
        try:
            for n in range(frames):
                encoder.stdin.write(pattern.i420(n, n * 1_000_000 // FPS))
        finally:
            encoder.stdin.close()
            encoder.wait(timeout=60)
    assert encoder.returncode == 0, log.read_text(errors="replace")
    return out.read_bytes()


X264_RUNS = {
    # Constrained to baseline (CAVLC, no B slices); four slices a picture (zerolatency's
    # sliced threads: one slice a thread, as OpenH264 and VideoToolbox do), the later ones
    # after three-byte start codes, as x264 writes them.
    "baseline": ["--profile", "baseline", "--threads", "4"],
    # Main profile (CABAC), one slice a picture, with access unit delimiters.
    "main": ["--profile", "main", "--threads", "1", "--aud"],
}


# OpenH264's decoder holds every picture of a stream whose profile is not baseline (66) or
# scalable baseline (83) for one call, B slices or not (`CWelsDecoder::ReorderPicturesInDisplay`
# in codec/decoder/plus/src/welsDecoderExt.cpp); tandem-codec's OpenH264Decoder flushes it out
# of the same call, so the main-profile run shows each picture as its own frame.


@pytest.mark.parametrize("profile", list(X264_RUNS))
def test_a_foreign_h264_stream_through_send_encoded_shows_every_pixel_code(keys, tmp_path, profile):
    if shutil.which("x264") is None:
        pytest.skip("the x264 command-line tool is not installed (apt-get install x264)")
    frames = 3 * FPS
    stream = x264_stream(tmp_path, frames, X264_RUNS[profile])
    units = access_units(stream)
    assert len(units) == frames, f"{len(units)} access units for {frames} pictures"
    keyframes = [any(kind(u) == IDR for u in au) for _, au in units]
    # A receiver joins at any keyframe: each IDR picture brings its SPS and PPS.
    for (_, au), key in zip(units, keyframes):
        if key:
            assert {SPS, PPS} <= {kind(u) for u in au}
    slices = sorted({sum(1 for u in au if kind(u) in SLICES) for _, au in units})
    assembler = Assembler()
    assert all(assembler.sample(data) is not None for data, _ in units)

    seen = Codes()
    sconf = t.SenderConfig(width=W, height=H, fps=FPS, net=t.NetConfig(security=keys.first))
    rconf = t.ReceiverConfig(stats_interval_ms=200, net=t.NetConfig(security=keys.second))
    tx, rx, told = start_pair(keys, sconf, rconf, seen)
    try:
        # As a VideoToolbox app does: wait for the session and the receiver's first keyframe
        # request (the stream opens with one).
        assert wait_for(tx.is_connected, timeout=5)
        assert wait_for(lambda: told.keyframe_requests >= 1, timeout=5)
        number_of = {}
        start = time.monotonic()
        for n, (data, _) in enumerate(units):
            number_of[tx.send_encoded(data, t.VideoCodec.H264, keyframes[n])] = n
            pause = start + (n + 1) / FPS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        wait_for(lambda: seen.frame_count >= frames, timeout=3)
        time.sleep(0.3)  # a stats interval after the last frame
    finally:
        tx.stop()
        rx.stop()
    with seen.lock:
        shown = list(seen.shown)
        stats = list(seen.stats)
    read = [(fid, code) for fid, code, _ in shown if code is not None]
    right = [fid for fid, code in read if number_of.get(fid) == code]
    previous = [fid for fid, code in read if number_of.get(fid) == code + 1]
    shown_stat = stats[-1].frames_shown if stats else None
    print(
        f"\nx264 {profile} ({', '.join(X264_RUNS[profile])}): {frames} frames sent "
        f"({sum(keyframes)} keyframes, {'/'.join(map(str, slices))} slices a picture), "
        f"{len(shown)} shown (stats: {shown_stat}), {len(read)} pixel codes read, "
        f"{len(right)} with the frame's own number, {len(previous)} with the one before"
    )
    # Every frame shown had its pixel code read, naming the picture sent as that frame; and
    # all were shown (on loopback they are; a loaded machine's playout may skip one or two).
    assert len(right) == len(read) == len(shown)
    assert len(shown) >= frames - 3
    assert stats[-1].codec == "H.264"
    assert all(key == keyframes[number_of[fid]] for fid, _, key in shown)
