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
        if WiFiAwareSupport.isAvailable {
            // Four choices are too many for a segmented control on a phone.
            Picker("Path", selection: $model.link) {
                linkChoices
                Text("Wi-Fi Aware (realtime)").tag(SessionLink.wifiAware)
            }
            .pickerStyle(.menu)
        } else {
            Picker("Path", selection: $model.link) {
                linkChoices
            }
            .pickerStyle(.segmented)
        }
        Toggle("Encrypted (paired devices only)", isOn: $model.encrypted)
    }

    @ViewBuilder
    private var linkChoices: some View {
        Text("Wi-Fi").tag(SessionLink.infrastructure)
        Text("Peer-to-peer").tag(SessionLink.peerToPeer)
        Text("Automatic").tag(SessionLink.automatic)
    }
}
