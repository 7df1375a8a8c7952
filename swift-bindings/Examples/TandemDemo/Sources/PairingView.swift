import SwiftUI
import Tandem

struct PairingView: View {
    @EnvironmentObject private var model: AppModel
    @StateObject private var pairing = PairingController()
    @State private var code = ""
    @State private var chosen: String?

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    TextField("Name", text: $model.deviceName)
                        .autocorrectionDisabled()
                } header: {
                    Text("This device")
                } footer: {
                    // AppModel.systemDeviceName says why the system's name may be generic.
                    Text("Other devices see this name when they find or pair with this one.")
                }
                Section("Paired devices") {
                    if model.pairedDevices.isEmpty {
                        Text("None yet").foregroundStyle(.secondary)
                    }
                    ForEach(model.pairedDevices, id: \.fingerprint) { device in
                        VStack(alignment: .leading) {
                            Text(device.name)
                            Text(device.fingerprint)
                                .font(.caption.monospaced())
                                .foregroundStyle(.secondary)
                        }
                    }
                    .onDelete { model.forgetPairedDevices(at: $0) }
                }
                Section("Show a code") {
                    if let shown = pairing.shownCode {
                        Text(shown).font(.system(.largeTitle, design: .monospaced))
                        Text("Type it on the other device, under Enter a code.")
                            .foregroundStyle(.secondary)
                    }
                    Button("Show a code") { pairing.showCode(model: model) }
                        .disabled(pairing.busy)
                }
                Section("Enter a code") {
                    Picker("Device", selection: $chosen) {
                        Text("Choose…").tag(String?.none)
                        ForEach(model.pairingPeers, id: \.instance) { peer in
                            Text(peer.deviceName).tag(String?.some(peer.instance))
                        }
                    }
                    TextField("6-digit code", text: $code)
                        .numericKeyboard()
                    Button("Pair") {
                        if let peer = model.pairingPeers.first(where: { $0.instance == chosen }) {
                            pairing.enterCode(code, peer: peer, model: model)
                        }
                    }
                    .disabled(pairing.busy || chosen == nil || code.count < 6)
                }
                if WiFiAwareSupport.isAvailable {
                    // Wi-Fi Aware has its own, system-run pairing (the link layer's keys);
                    // the code pairing above is Tandem's (the engine's keys). A Wi-Fi Aware
                    // session uses both when Encrypted is on.
                    WiFiAwarePairingSection()
                }
                if let status = pairing.status {
                    Section {
                        Text(status)
                    }
                }
            }
            .navigationTitle("Pair")
        }
    }
}

private extension View {
    @ViewBuilder
    func numericKeyboard() -> some View {
        #if os(iOS)
        keyboardType(.numberPad)
        #else
        self
        #endif
    }
}

/// Reports wrong codes typed on the other device. Called on the pairing thread.
final class WrongCodeReporter: PairingDelegate {
    let report: @Sendable (UInt32) -> Void

    init(_ report: @escaping @Sendable (UInt32) -> Void) {
        self.report = report
    }

    func onWrongCode(attemptsLeft: UInt32) {
        report(attemptsLeft)
    }
}

@MainActor
final class PairingController: ObservableObject {
    /// The showing side needs a known port: the other side learns it from the pairing
    /// advertisement, which must go out before `pair` binds the socket.
    static let port: UInt16 = 47_210

    @Published private(set) var shownCode: String?
    @Published private(set) var status: String?
    @Published private(set) var busy = false
    /// Owns the pairing advertisement (it re-advertises when the discovery quiet rule changes).
    private weak var model: AppModel?

    func showCode(model: AppModel) {
        let code = newPairingCode()
        shownCode = code
        busy = true
        status = "Waiting for the other device (up to a minute)…"
        self.model = model
        model.advertise("pairing", port: Self.port, name: model.deviceName + AppModel.pairingMarker)
        let (wrongCodes, wrongCode) = AsyncStream.makeStream(of: UInt32.self)
        let reporter = WrongCodeReporter { wrongCode.yield($0) }
        let watcher = Task {
            for await left in wrongCodes {
                self.status = "A wrong code was typed; \(left) attempts left."
            }
        }
        Task {
            defer { watcher.cancel() }
            do {
                let device = try await pair(
                    role: .showCode, code: code, identity: model.identity,
                    deviceName: model.deviceName, net: model.pairingNet(port: Self.port),
                    remote: .listen, delegate: reporter)
                model.addPairedDevice(device)
                self.finish("Paired with \(device.name).")
            } catch {
                self.finish("\(error)")
            }
        }
    }

    func enterCode(_ code: String, peer: DiscoveredPeer, model: AppModel) {
        busy = true
        status = "Pairing with \(peer.deviceName)…"
        Task {
            do {
                let device = try await pair(
                    role: .enterCode, code: code, identity: model.identity,
                    deviceName: model.deviceName, net: model.pairingNet(port: 0),
                    remote: .discovered(peer: peer), delegate: nil)
                model.addPairedDevice(device)
                self.finish("Paired with \(device.name).")
            } catch {
                self.finish("\(error)")
            }
        }
    }

    private func finish(_ message: String) {
        status = message
        busy = false
        shownCode = nil
        model?.withdraw("pairing")
    }
}
