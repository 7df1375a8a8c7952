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
    public static func makePool(width: Int, height: Int, minimumBufferCount: Int = 3) throws -> CVPixelBufferPool {
        let poolAttributes: [String: Any] = [
            kCVPixelBufferPoolMinimumBufferCountKey as String: minimumBufferCount,
        ]
        var pool: CVPixelBufferPool?
        let status = CVPixelBufferPoolCreate(
            kCFAllocatorDefault,
            poolAttributes as CFDictionary,
            bufferAttributes(width: width, height: height) as CFDictionary,
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
    public func makePixelBuffer(pool: CVPixelBufferPool? = nil) throws -> CVPixelBuffer {
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
        // Without these the display layer guesses the matrix from the picture size; camera
        // video is BT.709 and the engine passes samples through unchanged.
        CVBufferSetAttachment(
            buffer, kCVImageBufferYCbCrMatrixKey, kCVImageBufferYCbCrMatrix_ITU_R_709_2, .shouldPropagate)
        CVBufferSetAttachment(
            buffer, kCVImageBufferColorPrimariesKey, kCVImageBufferColorPrimaries_ITU_R_709_2, .shouldPropagate)
        CVBufferSetAttachment(
            buffer, kCVImageBufferTransferFunctionKey, kCVImageBufferTransferFunction_ITU_R_709_2, .shouldPropagate)
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
