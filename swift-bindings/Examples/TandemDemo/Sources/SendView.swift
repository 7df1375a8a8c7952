import CoreMedia
import SwiftUI
import Tandem

enum SendSource: String, CaseIterable, Identifiable {
    case cameraAV1
    case cameraOpenH264
    case cameraH264
    case testPattern

    var id: Self { self }

    var title: String {
        switch self {
        case .cameraAV1: return "Camera, AV1 (engine, libaom)"
        case .cameraOpenH264: return "Camera, H.264 (engine, OpenH264)"
        case .cameraH264: return "Camera, H.264 (VideoToolbox)"
        case .testPattern: return "Test pattern (measures glass-to-glass)"
        }
    }

    /// The engine's encoder for the pictures it is given; nil for its default (H.264 through
    /// OpenH264), or where the app encodes itself.
    var encoder: VideoEncoder? {
        switch self {
        case .cameraAV1: return .aom
        case .cameraOpenH264: return .openH264
        case .cameraH264, .testPattern: return nil
        }
    }
}

struct SendView: View {
    @EnvironmentObject private var model: AppModel
    @StateObject private var controller = SendController()

    var body: some View {
        NavigationStack {
            Form {
                Section {
                    SessionSettings()
                }
                .disabled(controller.running)
                if model.link == .both {
                    Section("Over both paths") {
                        // The sender decides where each datagram goes; a running one follows
                        // a change at once.
                        Picker("Policy", selection: Binding(
                            get: { model.pathPolicy },
                            set: { policy in
                                model.pathPolicy = policy
                                controller.setPathPolicy(policy)
                            }
                        )) {
                            Text("Adaptive").tag(PathPolicy.adaptive)
                            Text("Duplicate").tag(PathPolicy.duplicate)
                            Text("Primary + backup").tag(PathPolicy.primaryBackup)
                        }
                        .pickerStyle(.segmented)
                    }
                }
                Section("Source") {
                    Picker("Source", selection: $controller.source) {
                        ForEach(SendSource.allCases) { source in
                            Text(source.title).tag(source)
                        }
                    }
                    .disabled(controller.running)
                }
                Section {
                    Button(controller.running ? "Stop" : "Start sending") {
                        if controller.running {
                            controller.stop()
                        } else {
                            Task { await controller.start(model: model) }
                        }
                    }
                    if let port = controller.port {
                        LabeledContent("Listening on port", value: "\(port)")
                    }
                    if let link = controller.linkStatus {
                        Text(link).foregroundStyle(.secondary)
                    }
                    if let peer = controller.stats?.peer {
                        LabeledContent("Receiver", value: peer)
                    }
                }
                if let stats = controller.stats {
                    Section("Stats") {
                        LabeledContent("Codec", value: stats.codec ?? "–")
                        LabeledContent("Frames/s", value: String(format: "%.0f", stats.fps))
                        LabeledContent("Bitrate", value: "\(Int(stats.bitrateKbps)) of \(stats.targetKbps) kbit/s")
                        LabeledContent("Delivered", value: stats.deliveredKbps.map { "\(Int($0)) kbit/s" } ?? "–")
                        LabeledContent("RTT", value: stats.rttMs.map { String(format: "%.1f ms", $0) } ?? "–")
                        LabeledContent("Loss", value: String(format: "%.1f %%", stats.lossPct))
                        LabeledContent("Encrypted", value: stats.secure ? "yes" : "no")
                        PathRows(paths: stats.paths)
                    }
                }
                if let error = controller.error {
                    Section {
                        Text(error).foregroundStyle(.red)
                    }
                }
            }
            .navigationTitle("Send")
        }
    }
}

@MainActor
final class SendController: ObservableObject {
    // Small enough for libaom and OpenH264 to encode in real time on a phone's CPU; the iOS
    // camera delivers exactly this size with the VGA preset.
    static let width = 640
    static let height = 480
    static let fps = 30

    @Published var source: SendSource = .cameraAV1
    @Published private(set) var running = false
    @Published private(set) var port: UInt16?
    /// What a Wi-Fi Aware transport is doing.
    @Published private(set) var linkStatus: String?
    @Published private(set) var stats: Stats?
    @Published private(set) var error: String?

    private var session: SenderSession?
    private var starting = false
    private var camera: CameraCapture?
    private var encoder: H264Encoder?
    private var tasks: [Task<Void, Never>] = []
    private weak var model: AppModel?
    /// This session in the model's discovery quiet rule.
    private var sessionID: UUID?

    func start(model: AppModel) async {
        // The awaits below let a second tap in before `session` is set.
        guard session == nil, !starting else { return }
        starting = true
        defer { starting = false }
        error = nil
        if source != .testPattern, !(await CameraCapture.requestAccess()) {
            error = "Camera access is off for this app (Settings › Privacy › Camera)."
            return
        }
        self.model = model
        let wifiAware = model.link == .wifiAware
        let net: NetConfig
        if wifiAware {
            // The transport picks the link; only the keys matter.
            net = model.securedNet()
        } else {
            net = await model.sessionNet()
        }
        do {
            let config = SenderConfig(
                width: UInt32(Self.width), height: UInt32(Self.height), fps: UInt32(Self.fps),
                encoder: source.encoder,
                source: source == .testPattern ? .testPattern : .app,
                pathPolicy: model.pathPolicy,
                net: net)
            let session: SenderSession
            if wifiAware {
                // The Wi-Fi Aware publication is the advertisement: no Bonjour needed.
                let (transport, events) = try WiFiAwareSupport.publisher()
                // The publisher does not open the link; the subscribing receiver does, and
                // starts the handshake.
                session = try SenderSession(config: config, transport: transport, initiator: false)
                tasks.append(Task {
                    for await event in events {
                        self.linkStatus = WiFiAwareSupport.describe(event)
                    }
                })
            } else {
                session = try SenderSession(config: config, remote: .listen)
                let port = try session.sender.localPort()
                self.port = port
                model.advertise("video", port: port, name: model.deviceName)
            }
            self.session = session
            let id = model.sessionStarted()
            sessionID = id
            try startCapture(session)
            running = true
            tasks.append(Task {
                for await stats in session.stats {
                    self.stats = stats
                    // A Wi-Fi Aware session is never on AWDL (and its link keeps discovery off AWDL
                    // anyway); a socket session's state comes from its stats.
                    model.session(id, stands: wifiAware ? .upInfrastructure : AppModel.discoveryState(
                        of: stats, connected: (try? session.sender.isConnected()) ?? false))
                }
            })
            tasks.append(Task {
                for await message in session.errors {
                    self.error = message
                }
            })
        } catch {
            stop()
            self.error = "\(error)"
        }
    }

    private func startCapture(_ session: SenderSession) throws {
        let sender = session.sender
        switch source {
        case .testPattern:
            return
        case .cameraAV1, .cameraOpenH264:
            // Failures travel from the camera queue to the main actor as values, so the
            // camera's closure holds nothing but Sendable things.
            let (failures, failed) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
            tasks.append(Task {
                for await failure in failures {
                    self.captureFailed(failure)
                }
            })
            let camera = CameraCapture()
            try camera.start(width: Self.width, height: Self.height) { sample in
                guard let pixels = CMSampleBufferGetImageBuffer(sample) else { return }
                do {
                    try sender.submit(pixels)
                } catch {
                    failed.yield("\(error)")
                }
            }
            self.camera = camera
        case .cameraH264:
            let encoder = try H264Encoder(
                width: Int32(Self.width), height: Int32(Self.height), fps: Self.fps,
                bitrateKbps: 2_500
            ) { sample in
                // Refused with NotConnected until a receiver is there; the keyframe request
                // that follows its arrival starts the stream properly.
                _ = try? sender.send(sample)
            }
            tasks.append(Task {
                for await _ in session.keyframeRequests {
                    encoder.forceKeyframe()
                }
            })
            tasks.append(Task {
                for await kbps in session.targetBitrates {
                    encoder.setBitrate(kbps: kbps)
                }
            })
            let camera = CameraCapture()
            try camera.start(width: Self.width, height: Self.height) { sample in
                guard let pixels = CMSampleBufferGetImageBuffer(sample) else { return }
                encoder.encode(pixels, time: CMSampleBufferGetPresentationTimeStamp(sample))
            }
            self.encoder = encoder
            self.camera = camera
        }
    }

    /// How a session over two paths spreads its datagrams, from now on.
    func setPathPolicy(_ policy: PathPolicy) {
        do {
            try session?.sender.setPathPolicy(policy: policy)
        } catch {
            self.error = "\(error)"
        }
    }

    /// A picture the engine refuses (wrong size or format) will be refused again: stop.
    private func captureFailed(_ failure: String) {
        guard running else { return }
        stop()
        error = failure
    }

    func stop() {
        tasks.forEach { $0.cancel() }
        tasks = []
        camera?.stop()
        camera = nil
        encoder?.invalidate()
        encoder = nil
        model?.withdraw("video")
        if let sessionID {
            model?.sessionEnded(sessionID)
        }
        sessionID = nil
        if let session {
            // stop() joins the engine's threads; keep that off the main thread.
            Task.detached { session.stop() }
        }
        session = nil
        running = false
        port = nil
        linkStatus = nil
    }
}
