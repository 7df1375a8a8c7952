// Wi-Fi Aware (Neighbor Awareness Networking) as the engine's datagram transport, iOS and
// iPadOS 26 and later.
//
// Why it matters to Tandem: AWDL, the peer-to-peer link the engine's own sockets can use, runs in
// its low-latency "realtime" mode only when the system decides so, and no public API asks for it.
// Wi-Fi Aware in iOS 26 is the first public lever: a data path opened with
// `WAPerformanceMode.realtime` "prioritizes latency at the expense of throughput, power, and
// other concurrent Wi-Fi use cases and devices". Wi-Fi Aware links are also authenticated and
// encrypted at the Wi-Fi layer, between devices the user paired, and coexist with the
// infrastructure network.
//
// What an app needs (all three, or the calls below fail with `WAError`):
// 1. The entitlement `com.apple.developer.wifi-aware`, an array holding `Publish` (the sender
//    side here: it publishes the service and accepts a connection), `Subscribe` (the receiver
//    side: it browses and connects), or both. Enable the Wi-Fi Aware capability in Xcode.
//    https://developer.apple.com/documentation/bundleresources/entitlements/com.apple.developer.wifi-aware
// 2. The service declared in Info.plist under `WiFiAwareServices`: a dictionary keyed by the full
//    service name (`_tandem-aware._udp` by default here; register your own name with IANA) whose
//    value holds a `Publishable` and/or `Subscribable` dictionary:
//        <key>WiFiAwareServices</key>
//        <dict>
//            <key>_tandem-aware._udp</key>
//            <dict>
//                <key>Publishable</key><dict/>
//                <key>Subscribable</key><dict/>
//            </dict>
//        </dict>
//    https://developer.apple.com/documentation/bundleresources/information-property-list/wifiawareservices
//    https://developer.apple.com/documentation/wifiaware/adopting-wi-fi-aware
// 3. The two devices paired once, through DeviceDiscoveryUI: the publishing device shows
//    `DevicePairingView(WiFiAwareTransport.pairingListener(...)!)`, the subscribing one
//    `DevicePicker(WiFiAwareTransport.pairingBrowser(...)!)`; the system runs the pairing UI
//    (a PIN) and adds each device to the other's `WAPairedDevice.allDevices`. After that the
//    transports find each other without any UI.
//    https://developer.apple.com/documentation/devicediscoveryui/devicepairingview
//    https://developer.apple.com/documentation/devicediscoveryui/devicepicker
//    https://developer.apple.com/documentation/wifiaware/connecting-paired-devices
//
// Apple sources for the calls below:
// - WACapabilities.supportedFeatures (empty set when the device has no Wi-Fi Aware):
//   https://developer.apple.com/documentation/wifiaware/wacapabilities/supportedfeatures
// - WAPublishableService.allServices / WASubscribableService.allServices, filled from Info.plist:
//   https://developer.apple.com/documentation/wifiaware/wapublishableservice/allservices
// - Publisher: ListenerProvider.wifiAware(_:active:) where Self == WAPublisherListener,
//   WAPublisherListener.Action.connecting(to:from:datapath:), DatapathParameters.realtime,
//   configureParameters(_:) and service (an NWListener.Service) to run it on an NWListener:
//   https://developer.apple.com/documentation/network/listenerprovider/wifiaware(_:active:)
//   https://developer.apple.com/documentation/wifiaware/wapublisherlistener/action/connecting(to:from:datapath:)
//   https://developer.apple.com/documentation/wifiaware/wapublisherlistener/configureparameters(_:)
//   https://developer.apple.com/documentation/wifiaware/wapublisherlistener/service
// - Subscriber: BrowserProvider.wifiAware(_:active:) where Self == WASubscriberBrowser,
//   WASubscriberBrowser.Action.connecting(to:from:), makeDescriptor() for an NWBrowser,
//   configureParameters(_:) for the browser and the connection:
//   https://developer.apple.com/documentation/wifiaware/wasubscriberbrowser/makedescriptor()
//   https://developer.apple.com/documentation/wifiaware/wasubscriberbrowser/configureparameters(_:)
// - NWParameters.wifiAware (WAParameters) and WAParameters.performanceMode; "each service must
//   have the same WAPerformanceMode on both the NetworkBrowser (subscriber) and NetworkListener
//   (publisher) sides": https://developer.apple.com/documentation/network/nwparameters/wifiaware
//   https://developer.apple.com/documentation/wifiaware/waperformancemode
// - Apple's sample "Building peer-to-peer apps" uses UDP, `realtime` and the interactive video
//   service class for the same reason as here, stops browsing after the first connection, and
//   warns that realtime "can drain a device's battery, so use it only when it's required":
//   https://developer.apple.com/documentation/wifiaware/building-peer-to-peer-apps
//
// WiFiAware is an iOS/iPadOS framework (Mac Catalyst lists some of its types, but not
// NWParameters.wifiAware); this file compiles to nothing elsewhere and with SDKs before 26.
#if canImport(WiFiAware) && canImport(Network) && os(iOS) && !targetEnvironment(macCatalyst)
import Foundation
import Network
import WiFiAware

public enum WiFiAwareTransportError: Error, Equatable, Sendable {
    /// This device has no Wi-Fi Aware (`WACapabilities.supportedFeatures` is empty).
    case unsupported
    /// The service is not declared in Info.plist under `WiFiAwareServices` with the role asked
    /// for (`Publishable` to publish, `Subscribable` to subscribe).
    case serviceNotDeclared(String)
}

/// A `DatagramTransport` over a Wi-Fi Aware data path in realtime mode, between two paired
/// devices. The sender publishes (`init(publishing:acceptingFrom:)`), the receiver subscribes
/// (`init(subscribingTo:on:)`); either side may be either, as long as one publishes and the
/// other subscribes.
///
/// ```swift
/// let transport = try WiFiAwareTransport(publishing: WiFiAwareTransport.defaultServiceName)
/// let session = try SenderSession(config: config, transport: transport, initiator: transport.initiatesSession)
/// ```
///
/// Both sides use `WAPerformanceMode.realtime` and the interactive video service class. The
/// subscriber connects to the first paired device it finds publishing the service and then stops
/// browsing; the publisher takes the first connection and refuses others. The engine's own
/// handshake and encryption run on top, as on any path.
@available(iOS 26.0, *)
public final class WiFiAwareTransport: DatagramTransport, @unchecked Sendable {
    /// The service name Tandem's demo declares; an app declares and uses its own.
    public static let defaultServiceName = "_tandem-aware._udp"

    /// Whether this device can use Wi-Fi Aware at all.
    public static var isSupported: Bool {
        WACapabilities.supportedFeatures.contains(.wifiAware)
    }

    /// How many devices this app has paired for Wi-Fi Aware (0 until the user pairs one with
    /// DeviceDiscoveryUI, or when the app lacks the entitlement).
    public static func pairedDeviceCount() async -> Int {
        // `try?` flattens the optional `current()` returns into one.
        let devices = try? await WAPairedDevice.allDevices.current()
        return devices?.count ?? 0
    }

    /// What to hand `DevicePairingView` on the publishing device: the service, published to
    /// devices the user pairs there, with the realtime data path. Nil when the service is not
    /// declared as `Publishable`. (`.userSpecifiedDevices` is for DeviceDiscoveryUI only: "Will
    /// throw an error if used with a `NetworkListener`", so the transport itself publishes to
    /// `.allPairedDevices`:
    /// https://developer.apple.com/documentation/wifiaware/wapublisherlistener/devices/userspecifieddevices)
    public static func pairingListener(serviceName: String = defaultServiceName) -> WAPublisherListener? {
        guard let service = WAPublishableService.allServices[serviceName] else { return nil }
        return WAPublisherListener.wifiAware(
            .connecting(to: service, from: .userSpecifiedDevices, datapath: .realtime))
    }

    /// What to hand `DevicePicker` on the subscribing device. Nil when the service is not
    /// declared as `Subscribable`. (`.userSpecifiedDevices` likewise only for `DevicePicker`:
    /// https://developer.apple.com/documentation/wifiaware/wasubscriberbrowser/devices/userspecifieddevices)
    public static func pairingBrowser(serviceName: String = defaultServiceName) -> WASubscriberBrowser? {
        guard let service = WASubscribableService.allServices[serviceName] else { return nil }
        return WASubscriberBrowser.wifiAware(.connecting(to: .userSpecifiedDevices, from: service))
    }

    private enum Role {
        case publisher(WAPublisherListener)
        case subscriber(WASubscriberBrowser)
    }

    /// Whether this end opens the link (the subscriber connects) and so starts a paired
    /// session's handshake: pass it as the session's `initiator`. The publisher does not.
    public var initiatesSession: Bool {
        if case .subscriber = role { return true }
        return false
    }

    /// `.searching` while publishing or browsing, `.connected(peer:)`, `.failed(reason:)`.
    public var events: AsyncStream<TransportEvent> { flow.events }

    private let role: Role
    private let flow = DatagramFlow(label: "tandem.transport.wifi-aware")
    private let lock = NSLock()
    private var listener: NWListener?
    private var browser: NWBrowser?

    /// Publishes `serviceName` to `devices` (all paired devices by default) and takes the first
    /// that connects.
    public init(
        publishing serviceName: String = defaultServiceName,
        acceptingFrom devices: WAPublisherListener.Devices = .allPairedDevices
    ) throws {
        guard Self.isSupported else { throw WiFiAwareTransportError.unsupported }
        guard let service = WAPublishableService.allServices[serviceName] else {
            throw WiFiAwareTransportError.serviceNotDeclared(serviceName)
        }
        role = .publisher(WAPublisherListener.wifiAware(
            .connecting(to: service, from: devices, datapath: .realtime)))
    }

    /// Browses for `serviceName` on `devices` (all paired devices by default) and connects to
    /// the first found.
    public init(
        subscribingTo serviceName: String = defaultServiceName,
        on devices: WASubscriberBrowser.Devices = .allPairedDevices
    ) throws {
        guard Self.isSupported else { throw WiFiAwareTransportError.unsupported }
        guard let service = WASubscribableService.allServices[serviceName] else {
            throw WiFiAwareTransportError.serviceNotDeclared(serviceName)
        }
        role = .subscriber(WASubscriberBrowser.wifiAware(.connecting(to: devices, from: service)))
    }

    /// UDP, realtime on the Wi-Fi Aware data path (the same on both sides), interactive video.
    private static func realtime(_ parameters: NWParameters) -> NWParameters {
        parameters.wifiAware.performanceMode = .realtime
        parameters.serviceClass = .interactiveVideo
        return parameters
    }

    private static func udp() -> NWParameters {
        DatagramFlow.udpParameters(includePeerToPeer: false, serviceClass: .interactiveVideo)
    }

    // MARK: DatagramTransport

    public func start(inbox: TransportInbox) {
        flow.start(inbox: inbox) { [weak self] in self?.cancelDiscovery() }
        switch role {
        case .publisher(let publisher):
            publish(publisher)
        case .subscriber(let subscriber):
            subscribe(subscriber)
        }
    }

    public func send(datagrams: [Data]) throws {
        try flow.send(datagrams)
    }

    public func stop() {
        flow.stop()
    }

    // MARK: Publisher

    private func publish(_ publisher: WAPublisherListener) {
        let parameters = Self.udp()
        publisher.configureParameters(parameters)
        let listener: NWListener
        do {
            listener = try NWListener(using: Self.realtime(parameters))
        } catch {
            flow.queue.async { [flow] in flow.fail("could not publish over Wi-Fi Aware: \(error)") }
            return
        }
        listener.service = publisher.service
        listener.newConnectionHandler = { [weak self] connection in
            guard let self, self.flow.adopt(connection) else {
                connection.cancel()
                return
            }
        }
        listener.stateUpdateHandler = { [weak self] state in
            guard let self else { return }
            switch state {
            case .ready:
                if !self.flow.hasConnection {
                    self.flow.emit(.searching)
                }
            case .failed(let error):
                self.flow.fail("publishing over Wi-Fi Aware failed: \(error)")
            default:
                break
            }
        }
        lock.lock()
        self.listener = listener
        lock.unlock()
        listener.start(queue: flow.queue)
    }

    // MARK: Subscriber

    private func subscribe(_ subscriber: WASubscriberBrowser) {
        let browser = NWBrowser(
            for: subscriber.makeDescriptor(), using: subscriber.configureParameters(Self.udp()))
        browser.browseResultsChangedHandler = { [weak self] results, _ in
            guard let self, !self.flow.hasConnection, let found = results.first else { return }
            self.connect(to: found.endpoint, with: subscriber)
        }
        browser.stateUpdateHandler = { [weak self] state in
            guard let self else { return }
            switch state {
            case .ready:
                if !self.flow.hasConnection {
                    self.flow.emit(.searching)
                }
            case .failed(let error):
                self.flow.fail("browsing over Wi-Fi Aware failed: \(error)")
            default:
                break
            }
        }
        lock.lock()
        self.browser = browser
        lock.unlock()
        browser.start(queue: flow.queue)
    }

    private func connect(to endpoint: NWEndpoint, with subscriber: WASubscriberBrowser) {
        let parameters = Self.realtime(subscriber.configureParameters(Self.udp()))
        let connection = NWConnection(to: endpoint, using: parameters)
        if flow.adopt(connection) {
            // Found and connecting: browsing on costs radio time and power for nothing.
            cancelBrowser()
        } else {
            connection.cancel()
        }
    }

    // MARK: Teardown

    private func cancelBrowser() {
        lock.lock()
        let browser = self.browser
        self.browser = nil
        lock.unlock()
        browser?.cancel()
    }

    private func cancelDiscovery() {
        cancelBrowser()
        lock.lock()
        let listener = self.listener
        self.listener = nil
        lock.unlock()
        listener?.cancel()
    }
}
#endif
