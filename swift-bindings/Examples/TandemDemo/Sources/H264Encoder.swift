import Foundation
import VideoToolbox

struct EncoderError: Error, CustomStringConvertible {
    let status: OSStatus
    var description: String { "VideoToolbox could not start an H.264 encoder (\(status))." }
}

/// A VideoToolbox H.264 encoder tuned for latency: no frame reordering (B-frames would hold
/// frames back), real-time mode, and low-latency rate control, which keeps each frame near
/// the average size instead of letting keyframes burst into the Wi-Fi queue.
final class H264Encoder: @unchecked Sendable {
    private let lock = NSLock()
    private var session: VTCompressionSession?
    private var keyframePending = true
    private let onSample: @Sendable (CMSampleBuffer) -> Void

    init(width: Int32, height: Int32, fps: Int, bitrateKbps: Int, onSample: @escaping @Sendable (CMSampleBuffer) -> Void) throws {
        self.onSample = onSample
        let specification: [String: Any] = [
            kVTVideoEncoderSpecification_EnableLowLatencyRateControl as String: true,
        ]
        var created: VTCompressionSession?
        let status = VTCompressionSessionCreate(
            allocator: kCFAllocatorDefault, width: width, height: height,
            codecType: kCMVideoCodecType_H264, encoderSpecification: specification as CFDictionary,
            imageBufferAttributes: nil, compressedDataAllocator: nil, outputCallback: nil,
            refcon: nil, compressionSessionOut: &created)
        guard status == noErr, let created else { throw EncoderError(status: status) }
        let properties: [CFString: CFTypeRef] = [
            kVTCompressionPropertyKey_RealTime: kCFBooleanTrue,
            kVTCompressionPropertyKey_AllowFrameReordering: kCFBooleanFalse,
            kVTCompressionPropertyKey_ProfileLevel: kVTProfileLevel_H264_ConstrainedBaseline_AutoLevel,
            kVTCompressionPropertyKey_AverageBitRate: NSNumber(value: bitrateKbps * 1000),
            kVTCompressionPropertyKey_ExpectedFrameRate: NSNumber(value: fps),
            // Receivers that join late or lose a frame also ask for keyframes
            // (`forceKeyframe`); this bounds the wait when such a request is lost.
            kVTCompressionPropertyKey_MaxKeyFrameIntervalDuration: NSNumber(value: 2),
        ]
        for (key, value) in properties {
            _ = VTSessionSetProperty(created, key: key, value: value)
        }
        _ = VTCompressionSessionPrepareToEncodeFrames(created)
        session = created
    }

    /// Makes the next frame a keyframe (a receiver asked for one).
    func forceKeyframe() {
        lock.lock()
        keyframePending = true
        lock.unlock()
    }

    /// Follows congestion control's target (a Wi-Fi link that degrades must get fewer bits,
    /// or its queue, and the latency, grows).
    func setBitrate(kbps: UInt32) {
        lock.lock()
        let session = self.session
        lock.unlock()
        guard let session else { return }
        _ = VTSessionSetProperty(
            session, key: kVTCompressionPropertyKey_AverageBitRate,
            value: NSNumber(value: Int(kbps) * 1000))
    }

    func encode(_ pixelBuffer: CVPixelBuffer, time: CMTime) {
        lock.lock()
        let session = self.session
        let keyframe = keyframePending
        keyframePending = false
        lock.unlock()
        guard let session else { return }
        let options: CFDictionary? = keyframe
            ? [kVTEncodeFrameOptionKey_ForceKeyFrame as String: true] as CFDictionary
            : nil
        let onSample = self.onSample
        _ = VTCompressionSessionEncodeFrame(
            session, imageBuffer: pixelBuffer, presentationTimeStamp: time, duration: .invalid,
            frameProperties: options, infoFlagsOut: nil
        ) { status, _, sample in
            guard status == noErr, let sample else { return }
            onSample(sample)
        }
    }

    func invalidate() {
        lock.lock()
        let session = self.session
        self.session = nil
        lock.unlock()
        if let session {
            VTCompressionSessionInvalidate(session)
        }
    }

    deinit {
        invalidate()
    }
}
