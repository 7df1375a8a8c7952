// Datagram transports the app provides to the engine (`DatagramTransport`, for
// `Sender.overTransport(config:transport:initiator:delegate:)` and
// `Receiver.overTransport(config:transport:initiator:delegate:)`), built on Apple's Network
// framework.
//
// Without a transport the engine opens its own UDP sockets, bound to the interface the session's
// `PathPreference` picks. A transport hands that job to the app: the engine still does
// everything else (pacing, loss recovery, congestion control, encryption) and gives the
// transport finished datagrams in batches; the transport gives it back what arrives. Use one
// when Network.framework can reach a peer the engine's sockets cannot: a Bonjour service
// endpoint, or Wi-Fi Aware (WiFiAwareTransport.swift), which only Network.framework exposes.
//
// Apple sources for the calls below (all Network framework, iOS 12+ / macOS 10.14+ unless said):
// - NWConnection: https://developer.apple.com/documentation/network/nwconnection
//   - batch(_:) "calls to send and receive are processed as a batch to improve performance":
//     https://developer.apple.com/documentation/network/nwconnection/batch(_:)
//   - receiveMessage(completion:), one complete datagram per call (Apple DTS recommends it over
//     receive(minimumIncompleteLength:maximumLength:) for UDP, developer forums thread 815465):
//     https://developer.apple.com/documentation/network/nwconnection/receivemessage(completion:)
//   - send(content:contentContext:isComplete:completion:) and SendCompletion.contentProcessed:
//     https://developer.apple.com/documentation/network/nwconnection/sendcompletion
//   - State (.setup, .waiting(NWError), .preparing, .ready, .failed(NWError), .cancelled; failed
//     and cancelled are terminal): https://developer.apple.com/documentation/network/nwconnection/state-swift.enum
// - NWListener(using:on:), newConnectionHandler ("to reject the connection, cancel it"),
//   stateUpdateHandler, port, service: https://developer.apple.com/documentation/network/nwlistener
// - NWParameters.includePeerToPeer ("applicable when advertising a Bonjour service on a
//   listener, or connecting to a Bonjour service") and serviceClass
//   (NWParameters.ServiceClass.interactiveVideo):
//   https://developer.apple.com/documentation/network/nwparameters
#if canImport(Network)
import Foundation
import Network

/// What a Network-framework transport is doing, for the app to show. The engine learns the
/// same through the inbox; these are for the user interface.
public enum TransportEvent: Equatable, Sendable {
    /// A listening transport is ready on this UDP port (advertise it, or show it).
    case listening(port: UInt16)
    /// A publisher or subscriber is waiting for the peer (Wi-Fi Aware).
    case searching
    /// The session's one connection is up; `peer` describes the remote endpoint.
    case connected(peer: String)
    /// The link failed; the session ends with this reason.
    case failed(reason: String)
}

/// One datagram flow on one `NWConnection`, driven for the engine: a receive loop into the
/// inbox, batched sends, and the connection's state turned into `inbox.fail(reason:)`. Shared by
/// `NetworkTransport` and `WiFiAwareTransport`, which differ only in how they get the
/// connection.
///
/// Threads: Network framework calls the handlers on `queue` (serial, `.userInteractive`: the
/// datagrams it carries are the session's video and its feedback). `send` runs on the engine's
/// sending thread; the state it shares with the handlers is behind `lock`.
final class DatagramFlow: @unchecked Sendable {
    /// Datagrams handed to Network framework and not yet processed. Past this the flow drops
    /// new ones instead of queueing them: a send queue that grows is latency, and the engine's
    /// congestion control and loss recovery see drops, not a hidden queue.
    static let maxInFlight = 512

    let queue: DispatchQueue
    let events: AsyncStream<TransportEvent>
    private let eventsIn: AsyncStream<TransportEvent>.Continuation
    private let lock = NSLock()
    private var inbox: TransportInbox?
    private var connection: NWConnection?
    private var ready = false
    private var finished = false
    private var failure: String?
    private var inFlight = 0
    /// Called once when the flow ends (failed or stopped): the owner cancels its listener or
    /// browser here.
    private var onFinish: (@Sendable () -> Void)?

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInteractive)
        let (events, eventsIn) = AsyncStream.makeStream(
            of: TransportEvent.self, bufferingPolicy: .bufferingNewest(8))
        self.events = events
        self.eventsIn = eventsIn
    }

    /// Starts delivering to `inbox`. Called once, before any connection is adopted.
    func start(inbox: TransportInbox, onFinish: @escaping @Sendable () -> Void) {
        lock.lock()
        self.inbox = inbox
        self.onFinish = onFinish
        lock.unlock()
    }

    /// Whether the flow has a connection already (a listener refuses later peers).
    var hasConnection: Bool {
        lock.lock()
        defer { lock.unlock() }
        return connection != nil
    }

    var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    /// Takes `connection` as the flow's one connection and starts it on `queue`. False when the
    /// flow already has one or has ended; the caller then cancels `connection`.
    @discardableResult
    func adopt(_ connection: NWConnection) -> Bool {
        lock.lock()
        guard self.connection == nil, !finished else {
            lock.unlock()
            return false
        }
        self.connection = connection
        lock.unlock()
        // Weak on both: the connection keeps its handler until it is cancelled, and the handler
        // must keep neither the connection nor the flow alive.
        connection.stateUpdateHandler = { [weak self, weak connection] state in
            guard let self, let connection else { return }
            self.changed(state, of: connection)
        }
        connection.start(queue: queue)
        return true
    }

    func emit(_ event: TransportEvent) {
        eventsIn.yield(event)
    }

    private func isCurrent(_ connection: NWConnection) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return self.connection === connection && !finished
    }

    private func changed(_ state: NWConnection.State, of connection: NWConnection) {
        guard isCurrent(connection) else { return }
        switch state {
        case .ready:
            lock.lock()
            ready = true
            lock.unlock()
            emit(.connected(peer: "\(connection.endpoint)"))
            receive(on: connection)
        case .waiting:
            // No usable path for now (Wi-Fi off, the interface gone); Network framework retries
            // when the path changes. Sends are dropped meanwhile, and the engine reports the
            // silent peer itself.
            lock.lock()
            ready = false
            lock.unlock()
        case .failed(let error):
            fail("the connection to \(connection.endpoint) failed: \(error)")
            connection.cancel()
        case .cancelled:
            // Only reached here when something other than stop() cancelled it.
            fail("the connection to \(connection.endpoint) was cancelled")
        default:
            break
        }
    }

    /// One datagram per completion, re-armed after each.
    private func receive(on connection: NWConnection) {
        connection.receiveMessage { [weak self] data, _, _, error in
            guard let self, self.isCurrent(connection) else { return }
            if let data, !data.isEmpty {
                self.deliver(data)
            }
            if error != nil {
                // A datagram flow reports ICMP errors here (the peer's port not open yet); the
                // state handler decides whether the link is gone. Re-arm after a moment so a
                // repeating error cannot spin.
                self.queue.asyncAfter(deadline: .now() + .milliseconds(5)) { [weak self] in
                    guard let self, self.isCurrent(connection) else { return }
                    self.receive(on: connection)
                }
                return
            }
            self.receive(on: connection)
        }
    }

    private func deliver(_ datagram: Data) {
        lock.lock()
        let inbox = self.inbox
        lock.unlock()
        // Bounded on the engine's side: it drops when full rather than block this queue.
        inbox?.deliver(datagram: datagram)
    }

    /// Sends `datagrams` in order, as one batch. Throws once the link has failed; drops (as a
    /// socket with no route would) while there is no ready connection or too much is in flight.
    func send(_ datagrams: [Data]) throws {
        lock.lock()
        if let failure {
            lock.unlock()
            throw TransportFailure.Failed(reason: failure)
        }
        guard let connection, ready, !finished else {
            lock.unlock()
            return
        }
        let room = max(Self.maxInFlight - inFlight, 0)
        let batch = datagrams.count <= room ? datagrams : Array(datagrams.prefix(room))
        inFlight += batch.count
        lock.unlock()
        guard !batch.isEmpty else { return }
        connection.batch {
            for datagram in batch {
                // Send errors on a datagram flow are per datagram (no buffer, an ICMP error);
                // a link that is gone shows in the state handler, which fails the session.
                connection.send(content: datagram, completion: .contentProcessed { [weak self] _ in
                    self?.processed()
                })
            }
        }
    }

    private func processed() {
        lock.lock()
        inFlight = max(inFlight - 1, 0)
        lock.unlock()
    }

    /// Ends the flow because the link failed: the session ends with `reason`. Only the first
    /// call counts, and none after `stop()`.
    func fail(_ reason: String) {
        lock.lock()
        guard !finished else {
            lock.unlock()
            return
        }
        finished = true
        failure = reason
        ready = false
        let inbox = self.inbox
        let onFinish = self.onFinish
        self.onFinish = nil
        lock.unlock()
        emit(.failed(reason: reason))
        inbox?.fail(reason: reason)
        onFinish?()
    }

    /// Ends the flow because the session is done with it. The inbox hears nothing more.
    func stop() {
        lock.lock()
        finished = true
        ready = false
        let connection = self.connection
        let onFinish = self.onFinish
        self.onFinish = nil
        self.inbox = nil
        lock.unlock()
        connection?.cancel()
        onFinish?()
        eventsIn.finish()
    }

    /// UDP parameters every transport here starts from: interactive video service class
    /// (Network framework maps it to the Wi-Fi video access category), and peer-to-peer
    /// interfaces (AWDL) only when asked.
    static func udpParameters(
        includePeerToPeer: Bool,
        serviceClass: NWParameters.ServiceClass
    ) -> NWParameters {
        let parameters = NWParameters(dtls: nil, udp: NWProtocolUDP.Options())
        parameters.includePeerToPeer = includePeerToPeer
        parameters.serviceClass = serviceClass
        return parameters
    }
}

/// A `DatagramTransport` on one UDP `NWConnection`: connect to an endpoint (a host and port, or a
/// Bonjour service), or listen on a port and take the first peer that sends.
///
/// ```swift
/// let transport = NetworkTransport(host: "192.168.1.20", port: 7000)
/// let sender = try Sender.overTransport(
///     config: config, transport: transport, initiator: transport.initiatesSession, delegate: events)
/// ```
///
/// Peer-to-peer (AWDL) is off unless `includePeerToPeer` is true. Turning it on lets the
/// connection and a listener's Bonjour service use AWDL, and keeps AWDL awake while they run,
/// which stalls the infrastructure Wi-Fi of both devices about once a second: ask for it only
/// when the session should run peer-to-peer.
///
/// A listener takes the first connection only; datagrams from any other address are refused
/// (their connections cancelled). A peer that restarts from a new port is therefore not heard
/// until the session starts again: prefer connecting from the side that knows the address.
public final class NetworkTransport: DatagramTransport, @unchecked Sendable {
    /// Where the transport's one connection comes from.
    public enum Role {
        /// Connect to `endpoint`: `.hostPort(host:port:)`, or `.service(name:type:domain:interface:)`
        /// for a Bonjour service (resolved by Network framework, over AWDL too when
        /// `includePeerToPeer` is on).
        case connect(to: NWEndpoint)
        /// Listen on `port` (`.any` for one the system picks; read it from `events` or
        /// `listeningPort`), optionally advertising `service` with Bonjour, and take the first
        /// peer that sends.
        case listen(port: NWEndpoint.Port, service: NWListener.Service?)
    }

    public let role: Role
    /// `.listening(port:)`, `.connected(peer:)`, `.failed(reason:)` as they happen.
    public var events: AsyncStream<TransportEvent> { flow.events }

    private let parameters: NWParameters
    private let flow: DatagramFlow
    private let lock = NSLock()
    private var listener: NWListener?
    private var port: UInt16?

    /// - Parameters:
    ///   - includePeerToPeer: allow AWDL (`NWParameters.includePeerToPeer`); see the type's
    ///     note on what it costs.
    ///   - serviceClass: the traffic class; `.interactiveVideo` for the session's video.
    ///   - requiredInterfaceType: keep the connection on one kind of interface (`.wifi`,
    ///     `.wiredEthernet`), or nil for any.
    public init(
        role: Role,
        includePeerToPeer: Bool = false,
        serviceClass: NWParameters.ServiceClass = .interactiveVideo,
        requiredInterfaceType: NWInterface.InterfaceType? = nil
    ) {
        self.role = role
        let parameters = DatagramFlow.udpParameters(
            includePeerToPeer: includePeerToPeer, serviceClass: serviceClass)
        if let requiredInterfaceType {
            parameters.requiredInterfaceType = requiredInterfaceType
        }
        self.parameters = parameters
        flow = DatagramFlow(label: "tandem.transport.network")
    }

    /// Connects to `host` (a name or an address) on UDP `port`.
    public convenience init(host: String, port: UInt16, includePeerToPeer: Bool = false) {
        self.init(
            role: .connect(to: .hostPort(host: NWEndpoint.Host(host), port: NWEndpoint.Port(rawValue: port) ?? .any)),
            includePeerToPeer: includePeerToPeer)
    }

    /// Listens on UDP `port` (0: any), optionally advertising `service` with Bonjour.
    public convenience init(listeningOn port: UInt16 = 0, service: NWListener.Service? = nil, includePeerToPeer: Bool = false) {
        self.init(
            role: .listen(port: NWEndpoint.Port(rawValue: port) ?? .any, service: service),
            includePeerToPeer: includePeerToPeer)
    }

    /// Whether this end opens the link (it connects) and so starts a paired session's
    /// handshake: pass it as the session's `initiator`. A listener does not.
    public var initiatesSession: Bool {
        if case .connect = role { return true }
        return false
    }

    /// The port a listening transport got, once it is listening.
    public var listeningPort: UInt16? {
        lock.lock()
        defer { lock.unlock() }
        return port
    }

    // MARK: DatagramTransport

    public func start(inbox: TransportInbox) {
        flow.start(inbox: inbox) { [weak self] in self?.cancelListener() }
        switch role {
        case .connect(let endpoint):
            flow.adopt(NWConnection(to: endpoint, using: parameters))
        case .listen(let port, let service):
            startListener(port: port, service: service)
        }
    }

    public func send(datagrams: [Data]) throws {
        try flow.send(datagrams)
    }

    public func stop() {
        flow.stop()
    }

    // MARK: Listening

    private func startListener(port: NWEndpoint.Port, service: NWListener.Service?) {
        let listener: NWListener
        do {
            listener = try NWListener(using: parameters, on: port)
        } catch {
            // Reported from the flow's queue, never from inside start(inbox:).
            flow.queue.async { [flow] in flow.fail("could not listen on UDP port \(port): \(error)") }
            return
        }
        listener.service = service
        listener.newConnectionHandler = { [weak self] connection in
            // The first peer is the session's; later ones are refused.
            guard let self, self.flow.adopt(connection) else {
                connection.cancel()
                return
            }
        }
        listener.stateUpdateHandler = { [weak self, weak listener] state in
            guard let self, let listener else { return }
            switch state {
            case .ready:
                if let port = listener.port?.rawValue {
                    self.lock.lock()
                    self.port = port
                    self.lock.unlock()
                    self.flow.emit(.listening(port: port))
                }
            case .failed(let error):
                self.flow.fail("the UDP listener failed: \(error)")
            default:
                break
            }
        }
        lock.lock()
        self.listener = listener
        lock.unlock()
        listener.start(queue: flow.queue)
    }

    private func cancelListener() {
        lock.lock()
        let listener = self.listener
        self.listener = nil
        lock.unlock()
        listener?.cancel()
    }
}
#endif
