import SwiftUI
import Tandem

@main
struct TandemDemoApp: App {
    @StateObject private var model = AppModel()

    var body: some Scene {
        WindowGroup {
            ContentView()
                .environmentObject(model)
        }
    }
}

struct ContentView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        TabView {
            WatchView()
                .tabItem { Label("Watch", systemImage: "play.rectangle") }
            SendView()
                .tabItem { Label("Send", systemImage: "video") }
            PairingView()
                .tabItem { Label("Pair", systemImage: "link") }
        }
        .alert(
            "Tandem",
            isPresented: Binding(get: { model.problem != nil }, set: { if !$0 { model.problem = nil } }),
            presenting: model.problem
        ) { _ in
            Button("OK", role: .cancel) {}
        } message: { problem in
            Text(problem)
        }
    }
}

/// The path and security choices, shown where sessions start.
struct SessionSettings: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        // Four choices and more are too many for a segmented control on a phone.
        Picker("Path", selection: $model.link) {
            Text("Wi-Fi").tag(SessionLink.infrastructure)
            Text("Peer-to-peer").tag(SessionLink.peerToPeer)
            Text("Automatic").tag(SessionLink.automatic)
            Text("Both (Wi-Fi + peer-to-peer)").tag(SessionLink.both)
            if WiFiAwareSupport.isAvailable {
                Text("Wi-Fi Aware (realtime)").tag(SessionLink.wifiAware)
            }
        }
        .pickerStyle(.menu)
        Toggle("Encrypted (paired devices only)", isOn: $model.encrypted)
    }
}

/// One line per path of a session over two: its state, what it carried, its RTT.
struct PathRows: View {
    let paths: [PathStats]

    var body: some View {
        ForEach(paths, id: \.index) { path in
            LabeledContent("Path \(path.index + 1) (\(PathRows.describe(path.state)))", value: PathRows.summary(path))
        }
    }

    static func describe(_ state: PathState) -> String {
        switch state {
        case .closed: return "closed"
        case .live: return "live"
        case .uncertain: return "uncertain"
        case .dead: return "dead"
        case .silent: return "silent"
        }
    }

    static func summary(_ path: PathStats) -> String {
        let megabytes = { (bytes: UInt64) in String(format: "%.2f MB", Double(bytes) / 1e6) }
        var text = "out \(megabytes(path.bytesSent)), in \(megabytes(path.bytesReceived))"
        if let rtt = path.rttMs {
            text += String(format: ", rtt %.1f ms", rtt)
        }
        if let failure = path.failure {
            text += " — \(failure)"
        }
        return text
    }
}
