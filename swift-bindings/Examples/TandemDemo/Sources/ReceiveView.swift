import AVFoundation
import SwiftUI
import Tandem

struct ReceiveView: View {
    let target: WatchTarget
    @EnvironmentObject private var model: AppModel
    @StateObject private var controller = ReceiveController()

    var body: some View {
        ZStack(alignment: .topLeading) {
            Color.black
            VideoLayerView(layer: controller.displayLayer)
            StatsOverlay(stats: controller.stats, error: controller.error)
        }
        .navigationTitle(target.title)
        .onAppear { controller.start(target: target, model: model) }
        .onDisappear { controller.stop() }
    }
}

@MainActor
final class ReceiveController: ObservableObject {
    @Published private(set) var stats: Stats?
    @Published private(set) var error: String?
    let displayLayer: AVSampleBufferDisplayLayer
    /// Frames go from the engine's decoder thread to this display's `.userInteractive` queue
    /// and on to the layer's renderer; layer calls that must be on the main actor are.
    let display: SampleBufferDisplay

    private var session: ReceiverSession?
    private var starting = false
    private var tasks: [Task<Void, Never>] = []

    init() {
        let layer = AVSampleBufferDisplayLayer()
        layer.videoGravity = .resizeAspect
        displayLayer = layer
        display = SampleBufferDisplay(layer: layer)
    }

    func start(target: WatchTarget, model: AppModel) {
        guard session == nil, !starting else { return }
        starting = true
        error = nil
        let h264 = model.receiveH264
        tasks.append(Task {
            defer { self.starting = false }
            let remote: Remote
            let net: NetConfig
            switch target {
            case .peer(let peer):
                remote = .discovered(peer: peer)
                net = await model.sessionNet(peer: peer.peerId)
            case .address(let address):
                remote = .address(address: address)
                net = await model.sessionNet()
            }
            guard !Task.isCancelled else { return }
            do {
                let session = try ReceiverSession(
                    config: ReceiverConfig(output: h264 ? .encoded : .decoded, net: net),
                    remote: remote, display: display)
                self.session = session
                watch(session)
            } catch {
                self.error = "\(error)"
            }
        })
    }

    private func watch(_ session: ReceiverSession) {
        tasks.append(Task {
            for await stats in session.stats {
                self.stats = stats
            }
        })
        tasks.append(Task {
            for await message in session.errors {
                self.error = message
            }
        })
    }

    func stop() {
        tasks.forEach { $0.cancel() }
        tasks = []
        if let session {
            // stop() joins the engine's threads; keep that off the main thread.
            Task.detached { session.stop() }
        }
        session = nil
        display.flush(removingImage: true)
    }
}

struct StatsOverlay: View {
    let stats: Stats?
    let error: String?

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            if let stats {
                Text(String(format: "%.0f fps  %.0f kbit/s", stats.fps, stats.bitrateKbps)
                    + " (target \(stats.targetKbps))")
                Text("RTT \(milliseconds(stats.rttMs))  one-way \(milliseconds(stats.oneWayMs))")
                Text("glass-to-glass \(percentiles(stats.g2gMs))  decode \(percentiles(stats.decodeMs))")
                Text(String(
                    format: "loss %.1f %%  jitter %.1f ms  playout %.1f ms",
                    stats.lossPct, stats.frameJitterMs, stats.playoutDelayMs))
                Text("late \(stats.framesLate)  skipped \(stats.framesSkipped)  freezes \(stats.freezes)")
                Label(
                    stats.secure ? "encrypted" : "unencrypted",
                    systemImage: stats.secure ? "lock.fill" : "lock.open")
            } else {
                Text("Connecting…")
            }
            if let error {
                Text(error).foregroundStyle(.yellow)
            }
        }
        .font(.caption.monospacedDigit())
        .foregroundStyle(.white)
        .padding(8)
        .background(.black.opacity(0.6), in: RoundedRectangle(cornerRadius: 8))
        .padding()
    }

    private func milliseconds(_ value: Double?) -> String {
        value.map { String(format: "%.1f ms", $0) } ?? "–"
    }

    /// p50/p95; glass-to-glass is measured from the test pattern's pixel code only.
    private func percentiles(_ latency: LatencyMs?) -> String {
        latency.map { String(format: "%.0f/%.0f ms", $0.p50, $0.p95) } ?? "–"
    }
}
