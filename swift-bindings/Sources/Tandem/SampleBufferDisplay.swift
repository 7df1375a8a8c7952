// A receiver's frames onto an AVSampleBufferDisplayLayer: off the main thread where the SDK
// allows it, on the main actor where it does not, and recovering when the layer's decoder fails.
//
// Apple sources:
// - AVSampleBufferDisplayLayer is `@MainActor`; since iOS 17 / macOS 14 its `sampleBufferRenderer`
//   (an AVSampleBufferVideoRenderer) is the object to enqueue to, and "allows you to safely
//   enqueue sample buffers from a background thread"; the layer's own enqueue, flush, status and
//   requiresFlushToResumeDecoding are discouraged from then on:
//   https://developer.apple.com/documentation/avfoundation/avsamplebufferdisplaylayer
//   https://developer.apple.com/documentation/avfoundation/avsamplebufferdisplaylayer/samplebufferrenderer
// - AVSampleBufferVideoRenderer: status (AVQueuedSampleBufferRenderingStatus, `.failed` needs a
//   flush to reset), requiresFlushToResumeDecoding ("when your app enters a state where using
//   video decoder resources is not permissible"), flush(), flush(removingDisplayedImage:
//   completionHandler:), enqueue(_:):
//   https://developer.apple.com/documentation/avfoundation/avsamplebuffervideorenderer
//   https://developer.apple.com/documentation/avfoundation/avsamplebuffervideorenderer/requiresflushtoresumedecoding
// - After any flush "the next frame passed to enqueue should be an IDR frame (also known as a key
//   frame or sync sample)": https://developer.apple.com/documentation/avfoundation/avsamplebuffervideorenderer/flush()
// - MainActor.assumeIsolated(_:file:line:) (iOS 13, macOS 10.15), to run main-actor code from a
//   main-queue block: https://developer.apple.com/documentation/swift/mainactor/assumeisolated(_:file:line:)
#if canImport(AVFoundation) && canImport(CoreMedia) && canImport(VideoToolbox)
import AVFoundation
import CoreMedia
import CoreVideo
import Foundation

/// Shows a receiver's frames on an `AVSampleBufferDisplayLayer` with the least delay.
///
/// - Decoded pictures (`show(_: DecodedFrame)`) are copied once into pooled buffers and shown on
///   arrival; a picture that arrives while the previous one is still being prepared replaces it
///   (a late picture is worth nothing).
/// - Encoded H.264/HEVC frames (`show(_: EncodedFrame)`) are all enqueued, in order, for the
///   layer to decode.
/// - When the layer's renderer fails (a decode error, or iOS taking the decoder away while the
///   app is in the background) it is flushed, and for encoded frames the display waits for the
///   next keyframe and asks for one through `onKeyframeNeeded` (wire it to
///   `receiver.requestKeyframe()`; `ReceiverSession(…, display:)` does).
///
/// Threads: frames are prepared and enqueued on `queue`, a serial queue at `.userInteractive`
/// (it is the last step from the decoder to the glass). On iOS 17+ / macOS 14+ the samples go
/// to the layer's `sampleBufferRenderer` from that queue; before, every layer call is made on the
/// main actor. Make the display on the main actor; `show`, `flush` and `onKeyframeNeeded` may be
/// called from any thread.
public final class SampleBufferDisplay: @unchecked Sendable {
    /// Where frames become samples and are enqueued.
    public let queue = DispatchQueue(label: "tandem.display", qos: .userInteractive)

    private let layer: AVSampleBufferDisplayLayer
    /// The layer's AVSampleBufferVideoRenderer on iOS 17+ / macOS 14+, else nil. Typed loosely so
    /// that the stored property needs no availability of its own.
    private let renderer: AnyObject?

    private let lock = NSLock()
    // Behind `lock`:
    private var pendingPicture: DecodedFrame?
    private var drainScheduled = false
    private var keyframeHandler: (@Sendable () -> Void)?
    private var colorsValue: ColorDescription?
    private var awaitingKeyframe = false
    private var lastKeyframeRequest: UInt64 = 0
    // Used on `queue` only:
    private var pool: CVPixelBufferPool?
    private var poolSize = (width: 0, height: 0)
    private let assembler = SampleBufferAssembler()

    /// While waiting for a keyframe after a reset, ask again this often (a request can be lost).
    private static let keyframeRetryNanoseconds: UInt64 = 500_000_000

    @MainActor
    public init(layer: AVSampleBufferDisplayLayer) {
        self.layer = layer
        if #available(iOS 17.0, macOS 14.0, tvOS 17.0, *) {
            renderer = layer.sampleBufferRenderer
        } else {
            renderer = nil
        }
    }

    /// The colours to tag decoded pictures with (see `makePixelBuffer(pool:colors:)`); nil
    /// leaves them untagged. Encoded frames carry their own in the parameter sets.
    public var colors: ColorDescription? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return colorsValue
        }
        set {
            lock.lock()
            colorsValue = newValue
            lock.unlock()
        }
    }

    /// Called (on `queue`, or on the main thread before iOS 17 / macOS 14) when the layer had to
    /// be reset and needs a keyframe to show encoded video again.
    public func onKeyframeNeeded(_ handler: @escaping @Sendable () -> Void) {
        lock.lock()
        keyframeHandler = handler
        lock.unlock()
    }

    /// Shows a decoded picture as soon as possible; replaces one still waiting.
    public func show(_ frame: DecodedFrame) {
        lock.lock()
        pendingPicture = frame
        let schedule = !drainScheduled
        drainScheduled = true
        lock.unlock()
        if schedule {
            queue.async { [self] in drainPicture() }
        }
    }

    /// Enqueues an encoded H.264/HEVC frame for the layer to decode. Frames before the first
    /// keyframe cannot be decoded and are skipped.
    public func show(_ frame: EncodedFrame) {
        queue.async { [self] in
            // Nil until a keyframe has brought parameter sets; a frame that cannot be framed is
            // skipped like a lost one (the decoder recovers at the next keyframe).
            guard let sample = try? assembler.sampleBuffer(for: frame) else { return }
            enqueue(sample, keyframe: frame.keyframe(), layerDecodes: true)
        }
    }

    /// Discards what is queued (and the picture on screen with `removingImage`). Encoded video
    /// resumes at the next keyframe.
    public func flush(removingImage: Bool = true) {
        lock.lock()
        pendingPicture = nil
        awaitingKeyframe = true
        lock.unlock()
        queue.async { [self] in
            if #available(iOS 17.0, macOS 14.0, tvOS 17.0, *), let renderer = renderer as? AVSampleBufferVideoRenderer {
                renderer.flush(removingDisplayedImage: removingImage, completionHandler: nil)
            } else {
                let layer = self.layer
                DispatchQueue.main.async {
                    MainActor.assumeIsolated {
                        if removingImage {
                            layer.flushAndRemoveImage()
                        } else {
                            layer.flush()
                        }
                    }
                }
            }
        }
    }

    // MARK: On `queue`

    private func drainPicture() {
        lock.lock()
        let frame = pendingPicture
        pendingPicture = nil
        drainScheduled = false
        let colors = colorsValue
        lock.unlock()
        guard let frame else { return }
        do {
            let size = (width: Int(frame.width()), height: Int(frame.height()))
            if pool == nil || size != poolSize {
                pool = try NV12.makePool(width: size.width, height: size.height, colors: colors)
                poolSize = size
            }
            let sample = try frame.makeSampleBuffer(pool: pool, colors: colors)
            enqueue(sample, keyframe: true, layerDecodes: false)
        } catch {
            // A picture that cannot be shown is skipped; the next one replaces it anyway.
        }
    }

    private func enqueue(_ sample: CMSampleBuffer, keyframe: Bool, layerDecodes: Bool) {
        if #available(iOS 17.0, macOS 14.0, tvOS 17.0, *), let renderer = renderer as? AVSampleBufferVideoRenderer {
            if renderer.status == .failed || renderer.requiresFlushToResumeDecoding {
                renderer.flush()
                decoderWasReset(layerDecodes: layerDecodes)
            }
            guard admit(keyframe: keyframe) else { return }
            renderer.enqueue(sample)
        } else {
            // Before iOS 17 / macOS 14 only the layer itself takes samples, and it belongs to
            // the main actor.
            let layer = self.layer
            DispatchQueue.main.async { [self] in
                MainActor.assumeIsolated {
                    if layer.status == .failed || layer.requiresFlushToResumeDecoding {
                        layer.flush()
                        decoderWasReset(layerDecodes: layerDecodes)
                    }
                    guard admit(keyframe: keyframe) else { return }
                    layer.enqueue(sample)
                }
            }
        }
    }

    /// After a flush the layer's decoder needs a keyframe. Pictures the engine decoded are
    /// whole; the flush alone is enough for them.
    private func decoderWasReset(layerDecodes: Bool) {
        guard layerDecodes else { return }
        lock.lock()
        awaitingKeyframe = true
        lastKeyframeRequest = DispatchTime.now().uptimeNanoseconds
        let handler = keyframeHandler
        lock.unlock()
        handler?()
    }

    /// Whether a sample may go to the layer: anything, except non-keyframes while a reset
    /// decoder waits for a keyframe (they would fail it again).
    private func admit(keyframe: Bool) -> Bool {
        lock.lock()
        guard awaitingKeyframe else {
            lock.unlock()
            return true
        }
        if keyframe {
            awaitingKeyframe = false
            lock.unlock()
            return true
        }
        let now = DispatchTime.now().uptimeNanoseconds
        let again = now &- lastKeyframeRequest > Self.keyframeRetryNanoseconds
        if again {
            lastKeyframeRequest = now
        }
        let handler = again ? keyframeHandler : nil
        lock.unlock()
        handler?()
        return false
    }
}

extension ReceiverSession {
    /// A receiver whose frames go straight from the engine's decoder thread to `display` (no
    /// hop through Swift's cooperative thread pool, whose highest priority is below
    /// `.userInteractive`), and whose display asks the sender for a keyframe when its decoder
    /// had to be reset. `frames` and `encodedFrames` stay empty.
    public convenience init(config: ReceiverConfig, remote: Remote, display: SampleBufferDisplay) throws {
        try self.init(sinks: display.sinks) { events in
            try Receiver(config: config, remote: remote, delegate: events)
        }
        display.requestKeyframes(from: receiver)
    }

    /// The same over an app-provided `transport` (`initiator` as in
    /// `init(config:transport:initiator:)`).
    public convenience init(
        config: ReceiverConfig,
        transport: DatagramTransport,
        initiator: Bool,
        display: SampleBufferDisplay
    ) throws {
        try self.init(sinks: display.sinks) { events in
            try Receiver.overTransport(
                config: config, transport: transport, initiator: initiator, delegate: events)
        }
        display.requestKeyframes(from: receiver)
    }

    /// The same over two app-provided transports at once (as in
    /// `init(config:first:second:initiator:)`).
    public convenience init(
        config: ReceiverConfig,
        first: DatagramTransport,
        second: DatagramTransport,
        initiator: Bool,
        display: SampleBufferDisplay
    ) throws {
        try self.init(sinks: display.sinks) { events in
            try Receiver.overTransports(
                config: config, first: first, second: second, initiator: initiator,
                delegate: events)
        }
        display.requestKeyframes(from: receiver)
    }
}

extension SampleBufferDisplay {
    var sinks: ReceiverSession.FrameSinks {
        (
            decoded: { frame in self.show(frame) },
            encoded: { frame in self.show(frame) }
        )
    }

    /// Wires `onKeyframeNeeded` to `receiver.requestKeyframe()`, without keeping the receiver
    /// alive.
    func requestKeyframes(from receiver: Receiver) {
        onKeyframeNeeded { [weak receiver] in
            // Fails only when the receiver has stopped; nothing is left to ask then.
            try? receiver?.requestKeyframe()
        }
    }
}
#endif
