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
            StatsOverlay(stats: controller.stats, error: controller.error, link: controller.linkStatus)
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
    /// What a Wi-Fi Aware transport is doing.
    @Published private(set) var linkStatus: String?
    let displayLayer: AVSampleBufferDisplayLayer
    /// Frames go from the engine's decoder thread to this display's `.userInteractive` queue
    /// and on to the layer's renderer; layer calls that must be on the main actor are.
    let display: SampleBufferDisplay

    private var session: ReceiverSession?
    private var starting = false
    private var tasks: [Task<Void, Never>] = []
    private weak var model: AppModel?
    /// This session in the model's discovery quiet rule.
    private var sessionID: UUID?

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
        self.model = model
        let h264 = model.receiveH264
        tasks.append(Task {
            defer { self.starting = false }
            do {
                let output: OutputMode = h264 ? .encoded : .decoded
                let session: ReceiverSession
                switch target {
                case .peer(let peer):
                    let net = await model.sessionNet(peer: peer.peerId)
                    guard !Task.isCancelled else { return }
                    session = try ReceiverSession(
                        config: ReceiverConfig(output: output, net: net),
                        remote: .discovered(peer: peer), display: display)
                case .address(let address):
                    let net = await model.sessionNet()
                    guard !Task.isCancelled else { return }
                    session = try ReceiverSession(
                        config: ReceiverConfig(output: output, net: net),
                        remote: .address(address: address), display: display)
                case .wifiAware:
                    let (transport, events) = try WiFiAwareSupport.subscriber()
                    session = try ReceiverSession(
                        config: ReceiverConfig(output: output, net: model.securedNet()),
                        transport: transport, initiator: true, display: display)
                    tasks.append(Task {
                        for await event in events {
                            self.linkStatus = WiFiAwareSupport.describe(event)
                        }
                    })
                }
                self.session = session
                watch(session, wifiAware: target == .wifiAware, model: model)
            } catch {
                self.error = "\(error)"
            }
        })
    }

    private func watch(_ session: ReceiverSession, wifiAware: Bool, model: AppModel) {
        let id = model.sessionStarted()
        sessionID = id
        tasks.append(Task {
            for await stats in session.stats {
                self.stats = stats
                // A Wi-Fi Aware session is never on AWDL (and its link keeps discovery off AWDL
                // anyway); a socket session's state comes from its stats.
                model.session(id, stands: wifiAware ? .upInfrastructure : AppModel.discoveryState(of: stats))
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
        if let sessionID {
            model?.sessionEnded(sessionID)
        }
        sessionID = nil
        linkStatus = nil
        display.flush(removingImage: true)
    }
}

struct StatsOverlay: View {
    let stats: Stats?
    let error: String?
    var link: String?

    var body: some View {
        VStack(alignment: .leading, spacing: 2) {
            if let stats {
                Text(String(format: "%.0f fps  %.0f kbit/s", stats.fps, stats.bitrateKbps)
                    + " (target \(stats.targetKbps))")
                if let codec = stats.codec {
                    Text("codec \(codec)")
                }
                Text("RTT \(milliseconds(stats.rttMs))  one-way \(milliseconds(stats.oneWayMs))")
                Text("glass-to-glass \(percentiles(stats.g2gMs))  decode \(percentiles(stats.decodeMs))")
                Text(String(
                    format: "loss %.1f %%  jitter %.1f ms  playout %.1f ms",
                    stats.lossPct, stats.frameJitterMs, stats.playoutDelayMs))
                Text("late \(stats.framesLate)  skipped \(stats.framesSkipped)  freezes \(stats.freezes)")
                ForEach(stats.paths, id: \.index) { path in
                    Text("path \(path.index + 1) \(PathRows.describe(path.state)): \(PathRows.summary(path))")
                }
                Label(
                    stats.secure ? "encrypted" : "unencrypted",
                    systemImage: stats.secure ? "lock.fill" : "lock.open")
            } else {
                Text("Connecting…")
            }
            if let link {
                Text(link)
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
