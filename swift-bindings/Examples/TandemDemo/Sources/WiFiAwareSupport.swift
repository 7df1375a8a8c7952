import SwiftUI
import Tandem
#if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
import DeviceDiscoveryUI
import WiFiAware
#endif

/// Wi-Fi Aware in the demo, in one place: the rest of the app never names an iOS 26 type, so it
/// builds with older SDKs and runs on iOS 16 and macOS 13, where the option is not offered.
///
/// Needs (see `WiFiAwareTransport.swift` and the README): iOS/iPadOS 26 on hardware with Wi-Fi
/// Aware, the `com.apple.developer.wifi-aware` entitlement (`project.yml`), the
/// `_tandem-aware._udp` service in Info.plist's `WiFiAwareServices`, and the two devices paired
/// once in the Pair tab (DeviceDiscoveryUI).
enum WiFiAwareSupport {
    /// Whether to offer "Wi-Fi Aware (realtime)": the OS, the hardware
    /// (`WACapabilities.supportedFeatures`) and the service declaration.
    static var isAvailable: Bool {
        #if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
        if #available(iOS 26.0, *) {
            return WiFiAwareTransport.isSupported && WiFiAwareTransport.pairingListener() != nil
        }
        #endif
        return false
    }

    /// The sender's side: publishes the service to paired devices. It does not open the link,
    /// so its session is not the handshake's initiator.
    static func publisher() throws -> (DatagramTransport, AsyncStream<TransportEvent>) {
        #if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
        if #available(iOS 26.0, *) {
            let transport = try WiFiAwareTransport(publishing: WiFiAwareTransport.defaultServiceName)
            return (transport, transport.events)
        }
        #endif
        throw WiFiAwareTransportUnavailable()
    }

    /// The receiver's side: finds a paired device publishing the service and connects; its
    /// session is the handshake's initiator.
    static func subscriber() throws -> (DatagramTransport, AsyncStream<TransportEvent>) {
        #if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
        if #available(iOS 26.0, *) {
            let transport = try WiFiAwareTransport(subscribingTo: WiFiAwareTransport.defaultServiceName)
            return (transport, transport.events)
        }
        #endif
        throw WiFiAwareTransportUnavailable()
    }

    /// What a transport event means to the user.
    static func describe(_ event: TransportEvent) -> String {
        switch event {
        case .listening(let port): return "Listening on UDP port \(port)"
        case .searching: return "Looking for a paired device over Wi-Fi Aware…"
        case .connected(let peer): return "Wi-Fi Aware link up (\(peer))"
        case .failed(let reason): return reason
        }
    }
}

struct WiFiAwareTransportUnavailable: Error, CustomStringConvertible {
    var description: String { "Wi-Fi Aware needs iOS 26 on a device that supports it." }
}

/// The Pair tab's Wi-Fi Aware section: the system's pairing UI (DeviceDiscoveryUI) for the
/// demo's service. The sending device makes itself discoverable (`DevicePairingView`), the
/// watching one picks it (`DevicePicker`); the system shows a code to confirm. Shown only where
/// `WiFiAwareSupport.isAvailable`.
struct WiFiAwarePairingSection: View {
    var body: some View {
        #if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
        if #available(iOS 26.0, *) {
            WiFiAwarePairingControls()
        }
        #endif
    }
}

#if canImport(WiFiAware) && canImport(DeviceDiscoveryUI) && os(iOS) && !targetEnvironment(macCatalyst)
/// DevicePairingView(_:access:label:fallback:) and DevicePicker(_:access:onSelect:label:
/// fallback:parameters:), iOS 26:
/// https://developer.apple.com/documentation/devicediscoveryui/devicepairingview/init(_:access:label:fallback:)
/// https://developer.apple.com/documentation/devicediscoveryui/devicepicker/init(_:access:onselect:label:fallback:parameters:)
@available(iOS 26.0, *)
private struct WiFiAwarePairingControls: View {
    @State private var pairedCount = 0

    var body: some View {
        Section {
            if let listener = WiFiAwareTransport.pairingListener() {
                DevicePairingView(listener) {
                    Label("Make this device discoverable (it sends)", systemImage: "dot.radiowaves.left.and.right")
                } fallback: {
                    Text("Wi-Fi Aware pairing is not available on this device.")
                }
            }
            if let browser = WiFiAwareTransport.pairingBrowser() {
                DevicePicker(browser) { _ in
                    // The system has paired the device; the transports find it from now on.
                    Task { pairedCount = await WiFiAwareTransport.pairedDeviceCount() }
                } label: {
                    Label("Pick a sender to pair with (this device watches)", systemImage: "plus")
                } fallback: {
                    Text("Wi-Fi Aware pairing is not available on this device.")
                }
            }
            LabeledContent("Paired for Wi-Fi Aware", value: "\(pairedCount)")
        } header: {
            Text("Wi-Fi Aware")
        } footer: {
            Text("Pair once; then choose Wi-Fi Aware (realtime) as the path on both devices.")
        }
        .task { pairedCount = await WiFiAwareTransport.pairedDeviceCount() }
    }
}
#endif
