import Foundation
import SwiftUI
import Tandem
#if os(iOS)
import UIKit
#endif

/// How sessions reach the other device.
enum SessionLink: Hashable {
    /// The engine's sockets through the Wi-Fi router (or Ethernet).
    case infrastructure
    /// The engine's sockets over AWDL, directly between the devices.
    case peerToPeer
    /// The engine's sockets on whatever the peer and the interfaces allow, infrastructure
    /// first.
    case automatic
    /// The engine's sockets through the router and over AWDL at once, one session over both
    /// paths, so that a stall of one radio channel is covered by the other (the sender's
    /// `pathPolicy` spreads the datagrams). The peer must be seen on both.
    case both
    /// A Wi-Fi Aware data path in realtime mode (`WiFiAwareTransport`), iOS 26, between
    /// devices paired for it. Offered only where `WiFiAwareSupport.isAvailable`.
    case wifiAware
}

/// What the three tabs share: this device's keys, the path choice, and the peers nearby.
@MainActor
final class AppModel: ObservableObject {
    /// Appended to the device name while a device waits to be paired, so that the other
    /// side can tell its pairing listener from its video advertisement.
    static let pairingMarker = " · pairing"

    @Published var link: SessionLink = .automatic {
        didSet { linkChanged() }
    }
    /// How a sender under `.both` spreads its datagrams; changed live on a running sender.
    @Published var pathPolicy: PathPolicy = .adaptive
    /// Encrypted sessions accept paired devices only; off, anyone nearby can watch.
    @Published var encrypted: Bool
    /// The sender encodes H.264 with VideoToolbox; the receiver must then decode it itself.
    @Published var receiveH264 = false
    @Published private(set) var peers: [DiscoveredPeer] = []
    @Published private(set) var pairedDevices: [PairedDevice]
    @Published var problem: String?

    let identity: Identity
    let trustStore: TrustStore
    /// The name other devices see in discovery and pairing. Editable (Pair tab), because on
    /// iOS 16 and later the system gives the app only a generic one; see `systemDeviceName`.
    @Published var deviceName: String {
        didSet { UserDefaults.standard.set(deviceName, forKey: Self.deviceNameKey) }
    }
    let discovery: Discovery?

    private static let keychain = KeychainStore(service: "org.example.tandem.demo")
    private static let deviceNameKey = "deviceName"
    private var browseTask: Task<Void, Never>?
    /// Where each running session stands, for the discovery policy.
    private var sessions: [UUID: DiscoverySession] = [:]
    /// What this app advertises, by purpose ("video", "pairing"), kept so that it can be
    /// advertised again when the link (and with it the peer-to-peer cap) changes.
    private var advertised: [String: (port: UInt16, name: String, advertisement: Advertisement)] = [:]

    init() {
        if let saved = AppModel.keychain.data(for: "identity"), let restored = try? Identity.fromBytes(bytes: saved) {
            identity = restored
        } else {
            do {
                identity = try Identity.generate()
            } catch {
                fatalError("no system random source for a new identity: \(error)")
            }
        }
        trustStore = AppModel.keychain.data(for: "trust").flatMap { try? TrustStore.fromBytes(bytes: $0) } ?? TrustStore()
        // Locals, not the @Published properties: their getters need a fully made self.
        let devices = trustStore.devices()
        pairedDevices = devices
        encrypted = !devices.isEmpty
        deviceName = UserDefaults.standard.string(forKey: Self.deviceNameKey)
            ?? Self.systemDeviceName(fingerprint: identity.fingerprint())
        do {
            discovery = try Discovery(backend: nil)
        } catch {
            discovery = nil
            problem = "Discovery is unavailable: \(error)"
        }
        do {
            try AppModel.keychain.set(identity.toBytes(), for: "identity")
        } catch {
            problem = "\(error)"
        }
        startBrowsing()
    }

    /// A name for this device when the user has not typed one.
    ///
    /// iOS 16 and later return the generic model ("iPhone") from `UIDevice.name` unless the app
    /// holds the `com.apple.developer.device-information.user-assigned-device-name` entitlement,
    /// which Apple grants on request to apps that show the name to the user for a feature like
    /// this one (and never for tracking). Without it, two iPhones would both be "iPhone"; the
    /// demo adds the start of this device's key fingerprint so they can be told apart, and lets
    /// the user type a real name. With the entitlement, `UIDevice.name` is the name from
    /// Settings › General › About.
    /// https://developer.apple.com/documentation/uikit/uidevice/name
    /// https://developer.apple.com/documentation/bundleresources/entitlements/com.apple.developer.device-information.user-assigned-device-name
    static func systemDeviceName(fingerprint: String) -> String {
        #if os(iOS)
        let device = UIDevice.current
        let generic = device.name.isEmpty || device.name == device.model
        return generic ? "\(device.model) \(fingerprint.prefix(4))" : device.name
        #else
        return Host.current().localizedName ?? "Mac \(fingerprint.prefix(4))"
        #endif
    }

    /// The engine's path preference: Wi-Fi Aware sessions bring their own transport, and the
    /// rest of the app (discovery, code pairing) then stays on infrastructure.
    var path: PathPreference {
        switch link {
        case .infrastructure, .wifiAware: return .infrastructure
        case .peerToPeer: return .peerToPeer
        case .automatic: return .automatic
        case .both: return .both
        }
    }

    // MARK: The discovery quiet rule
    //
    // Tandem's peer-to-peer discovery (Bonjour with AWDL) keeps AWDL awake, and an awake AWDL
    // takes the radio off the router's channel about once a second: 30-90 ms stalls on the
    // infrastructure path. So discovery uses peer-to-peer only while a session may use it.
    // The engine's Discovery applies the policy (`Discovery.setSession(path:session:)`: AWDL
    // under `.peerToPeer` and `.both`; under `.automatic` until a session is up over
    // infrastructure; never under `.infrastructure`) and restarts every live browse and advertisement it made when
    // the answer changes. The demo's part: say where its sessions stand, and cap
    // `allowPeerToPeer` by the link the user chose (a Wi-Fi Aware session needs no Bonjour at
    // all, and AWDL would only take radio time from it).

    /// Whether browses and advertisements may use AWDL at all under the chosen link.
    var linkAllowsPeerToPeer: Bool {
        switch link {
        case .peerToPeer, .automatic, .both: return true
        case .infrastructure, .wifiAware: return false
        }
    }

    /// Whether discovery is using AWDL right now.
    var discoveryUsesPeerToPeer: Bool {
        discovery?.peerToPeerActive() ?? false
    }

    /// A session starts; report where it stands as that changes, and end it.
    func sessionStarted() -> UUID {
        let id = UUID()
        sessions[id] = .connecting
        applyDiscoveryPolicy()
        return id
    }

    func session(_ id: UUID, stands state: DiscoverySession) {
        guard sessions[id] != nil, sessions[id] != state else { return }
        sessions[id] = state
        applyDiscoveryPolicy()
    }

    func sessionEnded(_ id: UUID) {
        guard sessions.removeValue(forKey: id) != nil else { return }
        applyDiscoveryPolicy()
    }

    /// Where a socket session stands, from its stats: connected (a sender says so itself,
    /// `sender.isConnected()`; a receiver is when video arrives from a known peer), and the
    /// peer's address tells infrastructure from AWDL (`discoverySession(connected:peer:)` asks
    /// the engine, which knows the interfaces). Once a second, with the stats.
    static func discoveryState(of stats: Stats, connected: Bool? = nil) -> DiscoverySession {
        let up = connected ?? (stats.peer != nil && stats.fps > 0)
        return (try? discoverySession(connected: up, peer: stats.peer)) ?? .connecting
    }

    /// One state for the app: a session up over infrastructure is what AWDL would stall, so it
    /// wins; then one up over AWDL, then one connecting.
    private var combinedSession: DiscoverySession {
        let states = Set(sessions.values)
        for state in [DiscoverySession.upInfrastructure, .upPeerToPeer, .connecting] where states.contains(state) {
            return state
        }
        return .idle
    }

    private func applyDiscoveryPolicy() {
        do {
            _ = try discovery?.setSession(path: path, session: combinedSession)
        } catch {
            problem = "\(error)"
        }
    }

    /// The cap changes with the link: browse and advertise again under the new one.
    private func linkChanged() {
        applyDiscoveryPolicy()
        startBrowsing()
        for (purpose, ad) in advertised {
            advertise(purpose, port: ad.port, name: ad.name)
        }
    }

    /// Advertises this device for `purpose` ("video", "pairing"), replacing what was
    /// advertised for it; AWDL as the link allows and the policy says.
    func advertise(_ purpose: String, port: UInt16, name: String) {
        advertised.removeValue(forKey: purpose)?.advertisement.withdraw()
        guard let discovery else { return }
        do {
            let advertisement = try discovery.advertise(
                port: port, deviceName: name, identity: identity,
                allowPeerToPeer: linkAllowsPeerToPeer)
            advertised[purpose] = (port, name, advertisement)
        } catch {
            problem = "\(error)"
        }
    }

    func withdraw(_ purpose: String) {
        advertised.removeValue(forKey: purpose)?.advertisement.withdraw()
    }

    /// Devices advertising a video session.
    var senders: [DiscoveredPeer] { peers.filter { !$0.deviceName.hasSuffix(Self.pairingMarker) } }

    /// Devices waiting to be paired.
    var pairingPeers: [DiscoveredPeer] { peers.filter { $0.deviceName.hasSuffix(Self.pairingMarker) } }

    func isPaired(_ peer: DiscoveredPeer) -> Bool {
        trustStore.device(fingerprint: peer.peerId) != nil
    }

    /// The network settings of a video session; `peer` names the paired device expected
    /// when the trust store holds several. Asks the system for its interface kinds without
    /// blocking the main actor.
    func sessionNet(peer fingerprint: String? = nil) async -> NetConfig {
        await securedNet(peer: fingerprint).withSystemInterfaceKinds()
    }

    /// The security settings alone, for sessions over an app transport (which picks no
    /// interface itself).
    func securedNet(peer fingerprint: String? = nil) -> NetConfig {
        var security: SecurityConfig?
        if encrypted {
            let known = fingerprint.flatMap { trustStore.device(fingerprint: $0) } != nil
            security = SecurityConfig(
                identity: identity, trust: trustStore, peerFingerprint: known ? fingerprint : nil)
        }
        return NetConfig(path: path, security: security)
    }

    /// Pairing runs its own handshake, so it needs no keys here; under `.both` it takes
    /// whichever one path reaches the other device (a pairing is a few datagrams).
    func pairingNet(port: UInt16) async -> NetConfig {
        await NetConfig(port: port, path: path == .both ? .automatic : path).withSystemInterfaceKinds()
    }

    func addPairedDevice(_ device: PairedDevice) {
        do {
            try trustStore.add(device: device)
            try AppModel.keychain.set(trustStore.toBytes(), for: "trust")
        } catch {
            problem = "\(error)"
        }
        pairedDevices = trustStore.devices()
    }

    func forgetPairedDevices(at offsets: IndexSet) {
        for index in offsets {
            _ = trustStore.remove(fingerprint: pairedDevices[index].fingerprint)
        }
        do {
            try AppModel.keychain.set(trustStore.toBytes(), for: "trust")
        } catch {
            problem = "\(error)"
        }
        pairedDevices = trustStore.devices()
    }

    private func startBrowsing() {
        browseTask?.cancel()
        peers = []
        guard let discovery else { return }
        do {
            let events = try discovery.peers(
                allowPeerToPeer: linkAllowsPeerToPeer, ignorePeerId: identity.fingerprint())
            browseTask = Task { [weak self] in
                for await event in events {
                    self?.apply(event)
                }
            }
        } catch {
            problem = "\(error)"
        }
    }

    private func apply(_ event: DiscoveryEvent) {
        switch event {
        case .found(let peer), .updated(let peer):
            if let index = peers.firstIndex(where: { $0.instance == peer.instance }) {
                peers[index] = peer
            } else {
                peers.append(peer)
            }
        case .lost(let instance, _):
            peers.removeAll { $0.instance == instance }
        }
    }
}
