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
        Picker("Path", selection: $model.path) {
            Text("Wi-Fi").tag(PathPreference.infrastructure)
            Text("Peer-to-peer").tag(PathPreference.peerToPeer)
            Text("Automatic").tag(PathPreference.automatic)
        }
        .pickerStyle(.segmented)
        Toggle("Encrypted (paired devices only)", isOn: $model.encrypted)
    }
}
