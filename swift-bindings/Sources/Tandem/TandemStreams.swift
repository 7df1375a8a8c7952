// Async sequences over the engine's delegates, so an app can write `for await frame in
// session.frames` instead of implementing a delegate protocol.
//
// The engine calls delegates on its own threads; an AsyncStream continuation may be yielded
// to from any thread, so each delegate below is no more than a set of continuations.

import Foundation

// The generated records (Stats, DiscoveredPeer) are Sendable only when built by the Swift 6
// compiler, so under Swift 5.9/5.10 the compiler cannot prove these delegates Sendable. They
// are: every stored property is a `let` continuation, and continuations are thread-safe.

final class ReceiverEvents: ReceiverDelegate, @unchecked Sendable {
    let frames: AsyncStream<DecodedFrame>.Continuation
    let encoded: AsyncStream<EncodedFrame>.Continuation
    let stats: AsyncStream<Stats>.Continuation
    let errors: AsyncStream<String>.Continuation
    let warnings: AsyncStream<String>.Continuation
    /// When set, frames go here straight from the decoder thread instead of to the streams:
    /// a display with its own `.userInteractive` queue, no hop through the cooperative pool.
    let onDecoded: (@Sendable (DecodedFrame) -> Void)?
    let onEncodedFrame: (@Sendable (EncodedFrame) -> Void)?

    init(
        frames: AsyncStream<DecodedFrame>.Continuation,
        encoded: AsyncStream<EncodedFrame>.Continuation,
        stats: AsyncStream<Stats>.Continuation,
        errors: AsyncStream<String>.Continuation,
        warnings: AsyncStream<String>.Continuation,
        onDecoded: (@Sendable (DecodedFrame) -> Void)? = nil,
        onEncodedFrame: (@Sendable (EncodedFrame) -> Void)? = nil
    ) {
        self.frames = frames
        self.encoded = encoded
        self.stats = stats
        self.errors = errors
        self.warnings = warnings
        self.onDecoded = onDecoded
        self.onEncodedFrame = onEncodedFrame
    }

    func onFrame(frame: DecodedFrame) {
        if let onDecoded {
            onDecoded(frame)
        } else {
            frames.yield(frame)
        }
    }

    func onEncoded(frame: EncodedFrame) {
        if let onEncodedFrame {
            onEncodedFrame(frame)
        } else {
            encoded.yield(frame)
        }
    }
    func onStats(stats: Stats) { self.stats.yield(stats) }
    func onError(message: String) { errors.yield(message) }
    func onWarning(message: String) { warnings.yield(message) }

    func finish() {
        frames.finish()
        encoded.finish()
        stats.finish()
        errors.finish()
        warnings.finish()
    }
}

/// A receiver whose frames, stats and errors arrive as async sequences.
///
/// `frames` keeps only the newest two pictures: a consumer that falls behind skips to the
/// present instead of showing the past late. `encodedFrames` keeps every frame, because a
/// decoder needs them all in order. Releasing the session, or `stop()`, ends the receiver
/// and finishes every sequence.
public final class ReceiverSession: @unchecked Sendable {
    public let receiver: Receiver
    /// Decoded pictures (`OutputMode.decoded`, the default).
    public let frames: AsyncStream<DecodedFrame>
    /// Encoded frames as they arrived (`OutputMode.encoded`).
    public let encodedFrames: AsyncStream<EncodedFrame>
    public let stats: AsyncStream<Stats>
    /// A message each time what is wrong changes (peer gone, not paired, …).
    public let errors: AsyncStream<String>
    /// What strangers' datagrams said (another protocol version, an unpaired device),
    /// unauthenticated: show them, never stop for them.
    public let warnings: AsyncStream<String>
    private let events: ReceiverEvents

    /// A receiver on the engine's own UDP sockets, reaching or awaiting `remote`.
    public convenience init(config: ReceiverConfig, remote: Remote) throws {
        try self.init(sinks: nil) { events in
            try Receiver(config: config, remote: remote, delegate: events)
        }
    }

    /// A receiver whose datagrams travel over an app-provided `transport`
    /// (`NetworkTransport`, `WiFiAwareTransport`, or your own `DatagramTransport`).
    /// `initiator`: this end opened the link (it connected; the Wi-Fi Aware subscriber) and so
    /// starts a paired session's handshake; exactly one end must be. The transports here say
    /// which they are: `transport.initiatesSession`.
    public convenience init(config: ReceiverConfig, transport: DatagramTransport, initiator: Bool) throws {
        try self.init(sinks: nil) { events in
            try Receiver.overTransport(
                config: config, transport: transport, initiator: initiator, delegate: events)
        }
    }

    /// A receiver over two app-provided transports at once, one session over both: `first`
    /// is the session's first path (say a `NetworkTransport` through the router), `second`
    /// its second (a `WiFiAwareTransport`, device to device). The sender's path policy
    /// spreads the datagrams; the sender gives its transports in the same order. One
    /// transport failing closes its path (`Stats.paths[i].failure` says why) and the session
    /// goes on over the other. `initiator` as in `init(config:transport:initiator:)`.
    public convenience init(
        config: ReceiverConfig,
        first: DatagramTransport,
        second: DatagramTransport,
        initiator: Bool
    ) throws {
        try self.init(sinks: nil) { events in
            try Receiver.overTransports(
                config: config, first: first, second: second, initiator: initiator,
                delegate: events)
        }
    }

    /// The frames to hand straight to a display, bypassing `frames` and `encodedFrames`.
    typealias FrameSinks = (
        decoded: @Sendable (DecodedFrame) -> Void,
        encoded: @Sendable (EncodedFrame) -> Void
    )

    init(sinks: FrameSinks?, making make: (ReceiverEvents) throws -> Receiver) throws {
        let (frames, framesIn) = AsyncStream.makeStream(
            of: DecodedFrame.self, bufferingPolicy: .bufferingNewest(2))
        let (encoded, encodedIn) = AsyncStream.makeStream(
            of: EncodedFrame.self, bufferingPolicy: .unbounded)
        let (stats, statsIn) = AsyncStream.makeStream(
            of: Stats.self, bufferingPolicy: .bufferingNewest(8))
        let (errors, errorsIn) = AsyncStream.makeStream(
            of: String.self, bufferingPolicy: .bufferingNewest(8))
        let (warnings, warningsIn) = AsyncStream.makeStream(
            of: String.self, bufferingPolicy: .bufferingNewest(8))
        let events = ReceiverEvents(
            frames: framesIn, encoded: encodedIn, stats: statsIn, errors: errorsIn,
            warnings: warningsIn, onDecoded: sinks?.decoded, onEncodedFrame: sinks?.encoded)
        do {
            receiver = try make(events)
        } catch {
            events.finish()
            throw error
        }
        self.frames = frames
        self.encodedFrames = encoded
        self.stats = stats
        self.errors = errors
        self.warnings = warnings
        self.events = events
    }

    /// Ends the session (joins the engine's threads, well under a second) and finishes the
    /// sequences. Stopping twice is fine.
    public func stop() {
        receiver.stop()
        events.finish()
    }

    deinit {
        stop()
    }
}

final class SenderEvents: SenderDelegate, @unchecked Sendable {
    let stats: AsyncStream<Stats>.Continuation
    let errors: AsyncStream<String>.Continuation
    let warnings: AsyncStream<String>.Continuation
    let keyframeRequests: AsyncStream<Void>.Continuation
    let targetBitrates: AsyncStream<UInt32>.Continuation

    init(
        stats: AsyncStream<Stats>.Continuation,
        errors: AsyncStream<String>.Continuation,
        warnings: AsyncStream<String>.Continuation,
        keyframeRequests: AsyncStream<Void>.Continuation,
        targetBitrates: AsyncStream<UInt32>.Continuation
    ) {
        self.stats = stats
        self.errors = errors
        self.warnings = warnings
        self.keyframeRequests = keyframeRequests
        self.targetBitrates = targetBitrates
    }

    func onStats(stats: Stats) { self.stats.yield(stats) }
    func onError(message: String) { errors.yield(message) }
    func onWarning(message: String) { warnings.yield(message) }
    func onKeyframeRequested() { keyframeRequests.yield() }
    func onTargetBitrate(kbps: UInt32) { targetBitrates.yield(kbps) }

    func finish() {
        stats.finish()
        errors.finish()
        warnings.finish()
        keyframeRequests.finish()
        targetBitrates.finish()
    }
}

/// A sender whose stats, errors and keyframe requests arrive as async sequences. Feed it
/// through `sender` (`submit(_:)` for camera buffers, `send(_:)` for VideoToolbox samples).
public final class SenderSession: @unchecked Sendable {
    public let sender: Sender
    public let stats: AsyncStream<Stats>
    public let errors: AsyncStream<String>
    /// What strangers' datagrams said, unauthenticated: show them, never stop for them.
    public let warnings: AsyncStream<String>
    /// One element each time the receiver needs a keyframe. Only an app that encodes itself
    /// (VideoToolbox) acts on it; the engine's own encoder obeys by itself. One pending
    /// request means the same as several, hence the buffer of one.
    public let keyframeRequests: AsyncStream<Void>
    /// Congestion control's targets, kbit/s, newest only: an app that encodes itself sets
    /// its encoder's average bitrate to each (the engine's encoder follows them by itself).
    public let targetBitrates: AsyncStream<UInt32>
    private let events: SenderEvents

    /// A sender on the engine's own UDP sockets, reaching or awaiting `remote`.
    public convenience init(config: SenderConfig, remote: Remote) throws {
        try self.init { events in
            try Sender(config: config, remote: remote, delegate: events)
        }
    }

    /// A sender whose datagrams travel over an app-provided `transport`
    /// (`NetworkTransport`, `WiFiAwareTransport`, or your own `DatagramTransport`).
    /// `initiator`: this end opened the link and starts a paired session's handshake; exactly
    /// one end must be (`transport.initiatesSession` for the transports here).
    public convenience init(config: SenderConfig, transport: DatagramTransport, initiator: Bool) throws {
        try self.init { events in
            try Sender.overTransport(
                config: config, transport: transport, initiator: initiator, delegate: events)
        }
    }

    /// A sender over two app-provided transports at once (see
    /// `ReceiverSession.init(config:first:second:initiator:)`): `config.pathPolicy` spreads
    /// the datagrams over `first` and `second` (`.duplicate`, `.primaryBackup`, or
    /// `.adaptive`, the default; `sender.setPathPolicy(policy:)` changes it live).
    public convenience init(
        config: SenderConfig,
        first: DatagramTransport,
        second: DatagramTransport,
        initiator: Bool
    ) throws {
        try self.init { events in
            try Sender.overTransports(
                config: config, first: first, second: second, initiator: initiator,
                delegate: events)
        }
    }

    private init(making make: (SenderEvents) throws -> Sender) throws {
        let (stats, statsIn) = AsyncStream.makeStream(
            of: Stats.self, bufferingPolicy: .bufferingNewest(8))
        let (errors, errorsIn) = AsyncStream.makeStream(
            of: String.self, bufferingPolicy: .bufferingNewest(8))
        let (warnings, warningsIn) = AsyncStream.makeStream(
            of: String.self, bufferingPolicy: .bufferingNewest(8))
        let (keyframes, keyframesIn) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (targets, targetsIn) = AsyncStream.makeStream(
            of: UInt32.self, bufferingPolicy: .bufferingNewest(1))
        let events = SenderEvents(
            stats: statsIn, errors: errorsIn, warnings: warningsIn, keyframeRequests: keyframesIn,
            targetBitrates: targetsIn)
        do {
            sender = try make(events)
        } catch {
            events.finish()
            throw error
        }
        self.stats = stats
        self.errors = errors
        self.warnings = warnings
        self.keyframeRequests = keyframes
        self.targetBitrates = targets
        self.events = events
    }

    /// Ends the session and finishes the sequences. Stopping twice is fine.
    public func stop() {
        sender.stop()
        events.finish()
    }

    deinit {
        stop()
    }
}

/// What a browse reports, as one value.
public enum DiscoveryEvent: Equatable {
    case found(DiscoveredPeer)
    case updated(DiscoveredPeer)
    case lost(instance: String, peerId: String)
}

#if compiler(>=6)
extension DiscoveryEvent: Sendable {}
#endif

final class DiscoveryEvents: DiscoveryDelegate, @unchecked Sendable {
    let events: AsyncStream<DiscoveryEvent>.Continuation

    init(_ events: AsyncStream<DiscoveryEvent>.Continuation) {
        self.events = events
    }

    func onFound(peer: DiscoveredPeer) { events.yield(.found(peer)) }
    func onUpdated(peer: DiscoveredPeer) { events.yield(.updated(peer)) }
    func onLost(instance: String, peerId: String) {
        events.yield(.lost(instance: instance, peerId: peerId))
    }
}

extension Discovery {
    /// Browses for peers as an async sequence. The browse runs while the sequence is alive:
    /// cancelling the task that iterates it, or dropping it, stops the browse.
    /// `ignorePeerId` (this device's `identity.fingerprint()`) leaves out its own
    /// advertisement.
    public func peers(
        allowPeerToPeer: Bool,
        ignorePeerId: String? = nil
    ) throws -> AsyncStream<DiscoveryEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: DiscoveryEvent.self, bufferingPolicy: .unbounded)
        let running = try self.browse(
            delegate: DiscoveryEvents(continuation),
            allowPeerToPeer: allowPeerToPeer,
            ignorePeerId: ignorePeerId)
        // The termination handler is what keeps the browse (and the responder it came
        // from) alive; releasing it when the stream ends is what stops them.
        continuation.onTermination = { _ in
            running.stop()
            withExtendedLifetime(self) {}
        }
        return stream
    }
}

extension TandemError: CustomStringConvertible {
    /// The developer-facing message every case carries.
    public var message: String {
        switch self {
        case .InvalidArgument(let message), .NotPaired(let message), .Pairing(let message),
             .Keys(let message), .Codec(let message), .Network(let message),
             .Discovery(let message), .NotConnected(let message), .Stopped(let message):
            return message
        }
    }

    // `errorDescription` (and so `localizedDescription`) is generated as
    // `String(reflecting: self)`, which uses this instead of printing the enum's structure.
    public var description: String { message }
}
