// Decoded pictures into CVPixelBuffers and camera CVPixelBuffers into the encoder, each with
// one copy: the engine reads or writes the locked planes directly.

#if canImport(CoreVideo)
import CoreVideo
import Foundation

public enum PixelBufferError: Error, Equatable, Sendable {
    /// The buffer's pixel format is not one these helpers handle (see `NV12.formats`).
    case unsupportedFormat(OSType)
    /// The buffer's size differs from the picture's.
    case sizeMismatch(buffer: Size, picture: Size)
    /// CoreVideo refused (creating, locking): its `CVReturn`.
    case coreVideo(CVReturn)
    /// A plane had no base address (the buffer is not locked or not planar).
    case noBaseAddress(plane: Int)

    public struct Size: Equatable, Sendable {
        public var width: Int
        public var height: Int
    }
}

/// How a picture's YCbCr samples become colour: the YCbCr matrix, the colour primaries and the
/// transfer function, as CoreVideo's attachment values (`kCVImageBufferYCbCrMatrix_ITU_R_709_2`
/// and the like). Read it from a camera buffer with `init(of:)` on the sending side, apply it to
/// the receiver's pictures with `makePixelBuffer(pool:colors:)`.
///
/// CoreVideo attachment keys and values:
/// https://developer.apple.com/documentation/corevideo/image-buffer-attachment-keys and
/// https://developer.apple.com/documentation/corevideo/image-buffer-ycbcr-matrix-constants;
/// `CVBufferCopyAttachment(_:_:_:)` (iOS 15, macOS 12):
/// https://developer.apple.com/documentation/corevideo/cvbuffercopyattachment(_:_:_:)
public struct ColorDescription: Equatable, Sendable {
    /// `kCVImageBufferYCbCrMatrixKey`'s value, e.g. `kCVImageBufferYCbCrMatrix_ITU_R_601_4`.
    public var matrix: String?
    /// `kCVImageBufferColorPrimariesKey`'s value.
    public var primaries: String?
    /// `kCVImageBufferTransferFunctionKey`'s value.
    public var transferFunction: String?

    public init(matrix: String? = nil, primaries: String? = nil, transferFunction: String? = nil) {
        self.matrix = matrix
        self.primaries = primaries
        self.transferFunction = transferFunction
    }

    /// What `buffer` carries, e.g. the camera's choice on a captured picture.
    public init(of buffer: CVBuffer) {
        matrix = Self.attachment(buffer, kCVImageBufferYCbCrMatrixKey)
        primaries = Self.attachment(buffer, kCVImageBufferColorPrimariesKey)
        transferFunction = Self.attachment(buffer, kCVImageBufferTransferFunctionKey)
    }

    /// Nothing known.
    public var isEmpty: Bool {
        matrix == nil && primaries == nil && transferFunction == nil
    }

    /// HD video (ITU-R BT.709).
    public static let bt709 = ColorDescription(
        matrix: kCVImageBufferYCbCrMatrix_ITU_R_709_2 as String,
        primaries: kCVImageBufferColorPrimaries_ITU_R_709_2 as String,
        transferFunction: kCVImageBufferTransferFunction_ITU_R_709_2 as String)

    /// SD video: the BT.601 matrix with SMPTE C primaries and the BT.709 transfer function.
    public static let bt601 = ColorDescription(
        matrix: kCVImageBufferYCbCrMatrix_ITU_R_601_4 as String,
        primaries: kCVImageBufferColorPrimaries_SMPTE_C as String,
        transferFunction: kCVImageBufferTransferFunction_ITU_R_709_2 as String)

    /// The known values as an attachments dictionary.
    public var attachments: [String: Any] {
        var attachments: [String: Any] = [:]
        if let matrix { attachments[kCVImageBufferYCbCrMatrixKey as String] = matrix }
        if let primaries { attachments[kCVImageBufferColorPrimariesKey as String] = primaries }
        if let transferFunction { attachments[kCVImageBufferTransferFunctionKey as String] = transferFunction }
        return attachments
    }

    /// Sets the known values on `buffer` (propagated to buffers made from it), leaving the
    /// others as they are.
    public func apply(to buffer: CVBuffer) {
        for (key, value) in attachments {
            CVBufferSetAttachment(buffer, key as CFString, value as CFTypeRef, .shouldPropagate)
        }
    }

    private static func attachment(_ buffer: CVBuffer, _ key: CFString) -> String? {
        CVBufferCopyAttachment(buffer, key, nil) as? String
    }
}

/// The bi-planar 4:2:0 layout cameras deliver and `AVSampleBufferDisplayLayer` and Metal
/// prefer.
public enum NV12 {
    /// `'420v'` and `'420f'`; the engine carries the samples unchanged, so the range is
    /// whatever the camera chose.
    public static let formats: Set<OSType> = [
        kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange,
        kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
    ]

    /// A pool of IOSurface-backed `'420v'` buffers, so that showing a frame allocates nothing.
    /// With `colors`, every buffer of the pool carries them (as propagated attachments,
    /// `kCVBufferPropagatedAttachmentsKey`), and `makePixelBuffer(pool:)` keeps them.
    public static func makePool(
        width: Int,
        height: Int,
        minimumBufferCount: Int = 3,
        colors: ColorDescription? = nil
    ) throws -> CVPixelBufferPool {
        let poolAttributes: [String: Any] = [
            kCVPixelBufferPoolMinimumBufferCountKey as String: minimumBufferCount,
        ]
        var attributes = bufferAttributes(width: width, height: height)
        if let colors, !colors.isEmpty {
            // https://developer.apple.com/documentation/corevideo/cvbuffer-attribute-keys
            attributes[kCVBufferPropagatedAttachmentsKey as String] = colors.attachments
        }
        var pool: CVPixelBufferPool?
        let status = CVPixelBufferPoolCreate(
            kCFAllocatorDefault,
            poolAttributes as CFDictionary,
            attributes as CFDictionary,
            &pool)
        guard status == kCVReturnSuccess, let pool else {
            throw PixelBufferError.coreVideo(status)
        }
        return pool
    }

    // IOSurface backing lets the buffer reach the display layer or a Metal texture without
    // another copy.
    static func bufferAttributes(width: Int, height: Int) -> [String: Any] {
        [
            kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange,
            kCVPixelBufferWidthKey as String: width,
            kCVPixelBufferHeightKey as String: height,
            kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any](),
            kCVPixelBufferMetalCompatibilityKey as String: true,
        ]
    }
}

/// A locked plane's memory in the form the engine takes.
private func planeSource(_ buffer: CVPixelBuffer, _ index: Int) throws -> PlaneSource {
    guard let base = CVPixelBufferGetBaseAddressOfPlane(buffer, index) else {
        throw PixelBufferError.noBaseAddress(plane: index)
    }
    let stride = CVPixelBufferGetBytesPerRowOfPlane(buffer, index)
    let rows = CVPixelBufferGetHeightOfPlane(buffer, index)
    return PlaneSource(
        address: UInt64(UInt(bitPattern: base)),
        stride: UInt32(stride),
        len: UInt64(stride * rows))
}

private func withLockedBaseAddress<T>(
    _ buffer: CVPixelBuffer,
    _ flags: CVPixelBufferLockFlags,
    _ body: () throws -> T
) throws -> T {
    let status = CVPixelBufferLockBaseAddress(buffer, flags)
    guard status == kCVReturnSuccess else {
        throw PixelBufferError.coreVideo(status)
    }
    defer { CVPixelBufferUnlockBaseAddress(buffer, flags) }
    return try body()
}

extension DecodedFrame {
    /// The picture in a new `'420v'` buffer (from `pool` when given; make one with
    /// `NV12.makePool` at the stream's size). One copy, chroma interleaved as it is written.
    ///
    /// Colour: `colors` when given; otherwise whatever the buffer already carries (a pool made
    /// with `NV12.makePool(…, colors:)` gives each buffer its colours); otherwise the buffer
    /// stays untagged and the display applies its default for untagged video. The engine
    /// carries the samples but no colour description, so only the app knows what the sender's
    /// camera used: read it there with `ColorDescription(of: pixelBuffer)`.
    public func makePixelBuffer(pool: CVPixelBufferPool? = nil, colors: ColorDescription? = nil) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let status: CVReturn
        if let pool {
            status = CVPixelBufferPoolCreatePixelBuffer(kCFAllocatorDefault, pool, &buffer)
        } else {
            let (w, h) = (Int(width()), Int(height()))
            status = CVPixelBufferCreate(
                kCFAllocatorDefault, w, h, kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange,
                NV12.bufferAttributes(width: w, height: h) as CFDictionary, &buffer)
        }
        guard status == kCVReturnSuccess, let buffer else {
            throw PixelBufferError.coreVideo(status)
        }
        // Never a fixed matrix: SD camera video is usually BT.601 and HD BT.709, and a wrong
        // tag shifts every colour. The buffer's own attachments win over nothing.
        if let colors {
            colors.apply(to: buffer)
        }
        try copy(into: buffer)
        return buffer
    }

    /// Copies the picture into `buffer`, which must have its size and be NV12 (`'420v'`,
    /// `'420f'`) or planar I420 (`'y420'`, `'f420'`).
    public func copy(into buffer: CVPixelBuffer) throws {
        let picture = PixelBufferError.Size(width: Int(width()), height: Int(height()))
        let size = PixelBufferError.Size(
            width: CVPixelBufferGetWidth(buffer), height: CVPixelBufferGetHeight(buffer))
        guard size == picture else {
            throw PixelBufferError.sizeMismatch(buffer: size, picture: picture)
        }
        let format = CVPixelBufferGetPixelFormatType(buffer)
        try withLockedBaseAddress(buffer, []) {
            if NV12.formats.contains(format) {
                let luma = try planeSource(buffer, 0)
                let chroma = try planeSource(buffer, 1)
                try copyNv12(
                    luma: luma.address, lumaStride: luma.stride, lumaLen: luma.len,
                    chroma: chroma.address, chromaStride: chroma.stride, chromaLen: chroma.len)
            } else if format == kCVPixelFormatType_420YpCbCr8Planar
                || format == kCVPixelFormatType_420YpCbCr8PlanarFullRange
            {
                for (index, plane) in [Plane.y, Plane.u, Plane.v].enumerated() {
                    let target = try planeSource(buffer, index)
                    try copyPlane(
                        plane: plane, destination: target.address,
                        destinationStride: target.stride, destinationLen: target.len)
                }
            } else {
                throw PixelBufferError.unsupportedFormat(format)
            }
        }
    }
}

extension Sender {
    /// Encodes a camera picture: NV12 (`'420v'`/`'420f'`, what `AVCaptureVideoDataOutput`
    /// gives when asked) or planar I420 (`'y420'`). Its size must be the sender's configured
    /// size. The engine reads the locked planes once; a picture the encoder has not taken
    /// yet is replaced by this one.
    public func submit(_ pixelBuffer: CVPixelBuffer) throws {
        let format = CVPixelBufferGetPixelFormatType(pixelBuffer)
        let width = UInt32(CVPixelBufferGetWidth(pixelBuffer))
        let height = UInt32(CVPixelBufferGetHeight(pixelBuffer))
        try withLockedBaseAddress(pixelBuffer, .readOnly) {
            if NV12.formats.contains(format) {
                try submitNv12From(
                    width: width, height: height,
                    luma: planeSource(pixelBuffer, 0),
                    chroma: planeSource(pixelBuffer, 1))
            } else if format == kCVPixelFormatType_420YpCbCr8Planar
                || format == kCVPixelFormatType_420YpCbCr8PlanarFullRange
            {
                try submitI420From(
                    width: width, height: height,
                    y: planeSource(pixelBuffer, 0),
                    u: planeSource(pixelBuffer, 1),
                    v: planeSource(pixelBuffer, 2))
            } else {
                throw PixelBufferError.unsupportedFormat(format)
            }
        }
    }
}
#endif
