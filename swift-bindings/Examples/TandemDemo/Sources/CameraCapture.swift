import AVFoundation

enum CameraError: Error, CustomStringConvertible {
    case noCamera
    case cannotConfigure

    var description: String {
        switch self {
        case .noCamera: return "This device has no camera."
        case .cannotConfigure: return "The camera cannot deliver 640×480 NV12 video."
        }
    }
}

/// The camera as a stream of NV12 sample buffers, delivered on a serial queue of its own.
/// Late frames are dropped by AVFoundation rather than queued: for live video a stale
/// frame is worth nothing.
final class CameraCapture: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    private let session = AVCaptureSession()
    private let output = AVCaptureVideoDataOutput()
    private let queue = DispatchQueue(label: "tandem.demo.camera", qos: .userInteractive)
    /// Read and written on `queue` only.
    private var onFrame: (@Sendable (CMSampleBuffer) -> Void)?

    static func requestAccess() async -> Bool {
        switch AVCaptureDevice.authorizationStatus(for: .video) {
        case .authorized: return true
        case .notDetermined: return await AVCaptureDevice.requestAccess(for: .video)
        default: return false
        }
    }

    func start(width: Int, height: Int, onFrame: @escaping @Sendable (CMSampleBuffer) -> Void) throws {
        session.beginConfiguration()
        do {
            try configure(width: width, height: height)
        } catch {
            session.commitConfiguration()
            throw error
        }
        session.commitConfiguration()
        queue.async {
            self.onFrame = onFrame
            // startRunning blocks until the camera runs: never on the main thread.
            self.session.startRunning()
        }
    }

    func stop() {
        queue.async {
            self.session.stopRunning()
            self.onFrame = nil
        }
    }

    private func configure(width: Int, height: Int) throws {
        guard let device = AVCaptureDevice.default(for: .video) else { throw CameraError.noCamera }
        let input = try AVCaptureDeviceInput(device: device)
        if session.canSetSessionPreset(.vga640x480) {
            session.sessionPreset = .vga640x480
        }
        guard session.canAddInput(input), session.canAddOutput(output) else {
            throw CameraError.cannotConfigure
        }
        session.addInput(input)
        var settings: [String: Any] = [
            kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange,
        ]
        #if os(macOS)
        // macOS scales to any size asked for; iOS takes the size from the session preset.
        settings[kCVPixelBufferWidthKey as String] = width
        settings[kCVPixelBufferHeightKey as String] = height
        #endif
        output.videoSettings = settings
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        session.addOutput(output)
    }

    func captureOutput(
        _ output: AVCaptureOutput,
        didOutput sampleBuffer: CMSampleBuffer,
        from connection: AVCaptureConnection
    ) {
        onFrame?(sampleBuffer)
    }
}
