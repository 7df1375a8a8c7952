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
    let displayLayer = AVSampleBufferDisplayLayer()

    private var session: ReceiverSession?
    private var tasks: [Task<Void, Never>] = []

    init() {
        displayLayer.videoGravity = .resizeAspect
    }

    func start(target: WatchTarget, model: AppModel) {
        guard session == nil else { return }
        error = nil
        let h264 = model.receiveH264
        let remote: Remote
        let net: NetConfig
        switch target {
        case .peer(let peer):
            remote = .discovered(peer: peer)
            net = model.sessionNet(peer: peer.peerId)
        case .address(let address):
            remote = .address(address: address)
            net = model.sessionNet()
        }
        do {
            let session = try ReceiverSession(
                config: ReceiverConfig(output: h264 ? .encoded : .decoded, net: net),
                remote: remote)
            self.session = session
            let layer = displayLayer
            // Off the main actor: a frame should never wait for the UI to be idle.
            tasks.append(Task.detached(priority: .userInitiated) {
                if h264 {
                    await FramePump.showEncoded(session.encodedFrames, on: layer)
                } else {
                    await FramePump.showDecoded(session.frames, on: layer)
                }
            })
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
        } catch {
            self.error = "\(error)"
        }
    }

    func stop() {
        tasks.forEach { $0.cancel() }
        tasks = []
        if let session {
            // stop() joins the engine's threads; keep that off the main thread.
            Task.detached { session.stop() }
        }
        session = nil
        displayLayer.flushAndRemoveImage()
    }
}

/// Moves frames from a session to a display layer. Not isolated to any actor: it runs on
/// whatever thread the detached task gets.
enum FramePump {
    static func showDecoded(_ frames: AsyncStream<DecodedFrame>, on layer: AVSampleBufferDisplayLayer) async {
        var pool: CVPixelBufferPool?
        var poolSize = (width: 0, height: 0)
        for await frame in frames {
            let size = (width: Int(frame.width()), height: Int(frame.height()))
            do {
                if pool == nil || size.width != poolSize.width || size.height != poolSize.height {
                    pool = try NV12.makePool(width: size.width, height: size.height)
                    poolSize = size
                }
                let sample = try frame.makeSampleBuffer(pool: pool)
                layer.enqueue(sample)
            } catch {
                // A picture that cannot be shown is skipped; the next one replaces it anyway.
                continue
            }
        }
    }

    static func showEncoded(_ frames: AsyncStream<EncodedFrame>, on layer: AVSampleBufferDisplayLayer) async {
        let assembler = SampleBufferAssembler()
        for await frame in frames {
            if layer.status == .failed {
                // The layer's decoder gave up (a frame went missing); it restarts at the
                // next keyframe, which the engine asks the sender for on loss.
                layer.flush()
            }
            guard let sample = try? assembler.sampleBuffer(for: frame) else { continue }
            layer.enqueue(sample)
        }
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
