import SwiftUI
import Tandem

/// Where a receiver goes: a sender found by discovery, or one typed in as `ip:port`.
enum WatchTarget: Hashable {
    case peer(DiscoveredPeer)
    case address(String)
    /// The paired device publishing over Wi-Fi Aware (`WiFiAwareTransport`).
    case wifiAware

    var title: String {
        switch self {
        case .peer(let peer): return peer.deviceName
        case .address(let address): return address
        case .wifiAware: return "Wi-Fi Aware"
        }
    }
}

struct WatchView: View {
    @EnvironmentObject private var model: AppModel
    @State private var address = ""

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    SessionSettings()
                    Toggle("Sender uses H.264 (decode with VideoToolbox)", isOn: $model.receiveH264)
                }
                if model.link == .wifiAware {
                    Section {
                        NavigationLink(value: WatchTarget.wifiAware) {
                            Label("Paired sender over Wi-Fi Aware", systemImage: "dot.radiowaves.left.and.right")
                        }
                    } footer: {
                        Text("Connects to the first paired device that publishes. Pair devices in the Pair tab.")
                    }
                }
                Section("Senders nearby") {
                    if model.senders.isEmpty {
                        Text("Looking for senders…").foregroundStyle(.secondary)
                    }
                    ForEach(model.senders, id: \.instance) { peer in
                        NavigationLink(value: WatchTarget.peer(peer)) {
                            PeerRow(peer: peer, paired: model.isPaired(peer))
                        }
                    }
                }
                Section("By address") {
                    TextField("192.168.1.20:7000", text: $address)
                        .autocorrectionDisabled()
                    NavigationLink("Watch", value: WatchTarget.address(address))
                        .disabled(address.isEmpty)
                }
            }
            .navigationTitle("Watch")
            .navigationDestination(for: WatchTarget.self) { target in
                ReceiveView(target: target)
            }
        }
    }
}

struct PeerRow: View {
    let peer: DiscoveredPeer
    let paired: Bool

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            HStack {
                Text(peer.deviceName)
                if paired {
                    Image(systemName: "lock.fill").foregroundStyle(.green)
                }
            }
            Text(peer.addresses.map(\.address).joined(separator: "  "))
                .font(.caption)
                .foregroundStyle(.secondary)
            if !peer.compatible {
                Text("Speaks protocol \(peer.protocolVersion); update one of the apps.")
                    .font(.caption)
                    .foregroundStyle(.orange)
            }
        }
    }
}
