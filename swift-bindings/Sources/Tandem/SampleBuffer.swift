// VideoToolbox samples onto the wire and back: H.264/HEVC CMSampleBuffers (length-prefixed,
// parameter sets in the format description) to Annex B frames for `Sender`, and received
// Annex B frames to CMSampleBuffers for a VTDecompressionSession or an
// AVSampleBufferDisplayLayer (which decodes them itself). Also the engine's decoded pictures
// as display-ready samples. The byte shuffling lives in AnnexB.swift; this file is the
// CoreMedia side.

#if canImport(CoreMedia) && canImport(VideoToolbox)
import CoreMedia
import CoreVideo
import Foundation

public enum SampleBufferError: Error, Equatable, Sendable {
    case noData
    case noFormatDescription
    /// Not H.264 or HEVC (the media subtype, or the frame's codec).
    case unsupportedCodec(String)
    /// CoreMedia refused: its `OSStatus`.
    case coreMedia(OSStatus)
}

extension NALCodec {
    public init?(_ codec: VideoCodec) {
        switch codec {
        case .h264: self = .h264
        case .hevc: self = .hevc
        case .av1: return nil
        }
    }

    init?(mediaSubType: FourCharCode) {
        switch mediaSubType {
        case kCMVideoCodecType_H264: self = .h264
        case kCMVideoCodecType_HEVC: self = .hevc
        default: return nil
        }
    }

    public var videoCodec: VideoCodec {
        switch self {
        case .h264: return .h264
        case .hevc: return .hevc
        }
    }

    private func parameterSet(
        _ format: CMFormatDescription,
        at index: Int,
        pointer: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
        size: UnsafeMutablePointer<Int>?,
        count: UnsafeMutablePointer<Int>?,
        lengthSize: UnsafeMutablePointer<Int32>?
    ) -> OSStatus {
        switch self {
        case .h264:
            return CMVideoFormatDescriptionGetH264ParameterSetAtIndex(
                format, parameterSetIndex: index, parameterSetPointerOut: pointer,
                parameterSetSizeOut: size, parameterSetCountOut: count,
                nalUnitHeaderLengthOut: lengthSize)
        case .hevc:
            return CMVideoFormatDescriptionGetHEVCParameterSetAtIndex(
                format, parameterSetIndex: index, parameterSetPointerOut: pointer,
                parameterSetSizeOut: size, parameterSetCountOut: count,
                nalUnitHeaderLengthOut: lengthSize)
        }
    }

    /// The format description's parameter sets, in order, and the length-prefix size its
    /// samples use.
    func parameterSets(of format: CMFormatDescription) throws -> (sets: [[UInt8]], lengthSize: Int) {
        var count = 0
        var lengthSize: Int32 = 0
        var status = parameterSet(format, at: 0, pointer: nil, size: nil, count: &count, lengthSize: &lengthSize)
        guard status == noErr else { throw SampleBufferError.coreMedia(status) }
        var sets: [[UInt8]] = []
        for index in 0..<count {
            var pointer: UnsafePointer<UInt8>?
            var size = 0
            status = parameterSet(format, at: index, pointer: &pointer, size: &size, count: nil, lengthSize: nil)
            guard status == noErr, let pointer else { throw SampleBufferError.coreMedia(status) }
            sets.append(Array(UnsafeBufferPointer(start: pointer, count: size)))
        }
        return (sets, Int(lengthSize))
    }
}

/// Calls `body` with the block buffer's bytes, copying them only when the buffer is made of
/// several pieces.
private func withContiguousBytes<R>(
    of block: CMBlockBuffer,
    _ body: (UnsafeRawBufferPointer) throws -> R
) throws -> R {
    let length = CMBlockBufferGetDataLength(block)
    guard length > 0 else { throw SampleBufferError.noData }
    var lengthAtOffset = 0
    var pointer: UnsafeMutablePointer<CChar>?
    let status = CMBlockBufferGetDataPointer(
        block, atOffset: 0, lengthAtOffsetOut: &lengthAtOffset, totalLengthOut: nil,
        dataPointerOut: &pointer)
    if status == kCMBlockBufferNoErr, let pointer, lengthAtOffset == length {
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }
    var gathered = [UInt8](repeating: 0, count: length)
    let copied = gathered.withUnsafeMutableBytes { destination in
        CMBlockBufferCopyDataBytes(block, atOffset: 0, dataLength: length, destination: destination.baseAddress!)
    }
    guard copied == kCMBlockBufferNoErr else { throw SampleBufferError.coreMedia(copied) }
    return try gathered.withUnsafeBytes(body)
}

/// Sets the attachments a display layer and a decoder read from a one-sample buffer.
private func setAttachments(_ sample: CMSampleBuffer, keyframe: Bool, display: Bool) {
    guard let array = CMSampleBufferGetSampleAttachmentsArray(sample, createIfNecessary: true),
          CFArrayGetCount(array) > 0
    else { return }
    let attachments = unsafeBitCast(CFArrayGetValueAtIndex(array, 0), to: CFMutableDictionary.self)
    func set(_ key: CFString, _ value: Bool) {
        let boolean: CFBoolean = value ? kCFBooleanTrue : kCFBooleanFalse
        CFDictionarySetValue(
            attachments, Unmanaged.passUnretained(key).toOpaque(),
            Unmanaged.passUnretained(boolean).toOpaque())
    }
    // Low latency: show on arrival instead of waiting for a timebase to reach the
    // sender-clock timestamp.
    set(kCMSampleAttachmentKey_DisplayImmediately, true)
    set(kCMSampleAttachmentKey_NotSync, !keyframe)
    set(kCMSampleAttachmentKey_DoNotDisplay, !display)
}

private func presentationTime(microseconds: UInt64) -> CMTime {
    CMTime(value: CMTimeValue(clamping: microseconds), timescale: 1_000_000)
}

/// A VideoToolbox sample as one Annex B frame: 4-byte start codes, and on keyframes the
/// parameter sets first, so that a receiver can start decoding at any keyframe.
public struct AnnexBSample {
    public var bytes: [UInt8]
    public var codec: NALCodec
    public var keyframe: Bool

    public init(_ sampleBuffer: CMSampleBuffer) throws {
        guard let format = CMSampleBufferGetFormatDescription(sampleBuffer) else {
            throw SampleBufferError.noFormatDescription
        }
        let subtype = CMFormatDescriptionGetMediaSubType(format)
        guard let codec = NALCodec(mediaSubType: subtype) else {
            throw SampleBufferError.unsupportedCodec(fourCC(subtype))
        }
        guard let block = CMSampleBufferGetDataBuffer(sampleBuffer) else {
            throw SampleBufferError.noData
        }
        let keyframe = Self.isKeyframe(sampleBuffer)
        let (sets, lengthSize) = try codec.parameterSets(of: format)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(CMBlockBufferGetDataLength(block) + sets.reduce(0) { $0 + 4 + $1.count })
        if keyframe {
            for set in sets {
                bytes.append(contentsOf: AnnexB.startCode)
                bytes.append(contentsOf: set)
            }
        }
        try withContiguousBytes(of: block) { sample in
            try AnnexB.appendFromLengthPrefixed(sample, lengthSize: lengthSize, to: &bytes)
        }
        self.bytes = bytes
        self.codec = codec
        self.keyframe = keyframe
    }

    /// VideoToolbox marks the samples that are *not* sync points; no mark means a keyframe.
    static func isKeyframe(_ sample: CMSampleBuffer) -> Bool {
        guard let attachments = CMSampleBufferGetSampleAttachmentsArray(sample, createIfNecessary: false)
            as? [[CFString: Any]],
            let first = attachments.first
        else { return true }
        return (first[kCMSampleAttachmentKey_NotSync] as? Bool) != true
    }
}

private func fourCC(_ code: FourCharCode) -> String {
    let bytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: code >> $0) }
    return String(decoding: bytes, as: UTF8.self)
}

extension Sender {
    /// Sends a VideoToolbox H.264 or HEVC sample (from a VTCompressionSession's output
    /// handler) as one Annex B frame; returns its frame id. The sample is reframed once in
    /// Swift, and the engine copies that once.
    @discardableResult
    public func send(_ sampleBuffer: CMSampleBuffer) throws -> UInt32 {
        let frame = try AnnexBSample(sampleBuffer)
        return try frame.bytes.withUnsafeBytes { raw in
            try sendEncodedFrom(
                address: UInt64(UInt(bitPattern: raw.baseAddress)),
                len: UInt64(raw.count),
                codec: frame.codec.videoCodec,
                keyframe: frame.keyframe)
        }
    }
}

/// Turns received H.264/HEVC frames (`OutputMode.encoded`) into CMSampleBuffers, keeping the
/// format description made from the latest in-band parameter sets. Use one per stream, from
/// one task: frames must arrive in order.
public final class SampleBufferAssembler {
    /// The stream's current format; it changes when the sender's parameter sets do (a new
    /// resolution). A VTDecompressionSession must be checked against it
    /// (`VTDecompressionSessionCanAcceptFormatDescription`); a display layer copes itself.
    public private(set) var formatDescription: CMVideoFormatDescription?
    private var parameterSets: [[UInt8]] = []
    private var codec: NALCodec?

    public init() {}

    /// The frame as a sample ready to decode, or nil until the first keyframe has brought
    /// parameter sets (frames before it cannot be decoded anyway).
    public func sampleBuffer(for frame: EncodedFrame) throws -> CMSampleBuffer? {
        guard let frameCodec = frame.codec(), let codec = NALCodec(frameCodec) else {
            throw SampleBufferError.unsupportedCodec(frame.codec().map { "\($0)" } ?? "unknown")
        }
        let length = Int(frame.len())
        guard length > 0 else { throw SampleBufferError.noData }
        let bytes = try [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            try frame.copyTo(
                destination: UInt64(UInt(bitPattern: buffer.baseAddress)),
                destinationLen: UInt64(length))
            initialized = length
        }
        return try bytes.withUnsafeBytes { raw in
            try assemble(raw, codec: codec, keyframe: frame.keyframe(), display: frame.display(),
                         captureUs: frame.captureUs())
        }
    }

    private func assemble(
        _ raw: UnsafeRawBufferPointer,
        codec: NALCodec,
        keyframe: Bool,
        display: Bool,
        captureUs: UInt64
    ) throws -> CMSampleBuffer? {
        // One frame is one access unit, and one access unit is one sample: every NAL unit
        // of the frame but parameter sets and delimiters (all its slices, however many the
        // encoder cut it into: OpenH264 one per thread) goes into the sample, each behind a
        // 4-byte length ("the unit length field in an AVC or HEVC video sample",
        // https://developer.apple.com/documentation/coremedia/cmformatdescription/nalunitheaderlength;
        // WebRTC's H264AnnexBBufferToCMSampleBuffer, sdk/objc/components/video_codec/
        // nalu_rewriter.cc, makes one sample of a whole frame the same way). The parameter
        // sets make the format description instead.
        var sets: [[UInt8]] = []
        var payload: [Range<Int>] = []
        for unit in AnnexB.units(in: raw) {
            let type = codec.unitType(raw[unit.lowerBound])
            if codec.isParameterSet(type) {
                sets.append(Array(raw[unit]))
            } else if !codec.isAccessUnitDelimiter(type) {
                payload.append(unit)
            }
        }
        // Equal parameter sets on every keyframe are the normal case; a new description
        // for each would look like a format change to the decoder.
        if !sets.isEmpty, sets != parameterSets || codec != self.codec {
            formatDescription = try Self.makeFormat(codec, sets)
            parameterSets = sets
            self.codec = codec
        }
        guard let format = formatDescription, codec == self.codec, !payload.isEmpty else {
            return nil
        }
        let block = try Self.makeBlockBuffer(payload, from: raw)
        var timing = CMSampleTimingInfo(
            duration: .invalid,
            presentationTimeStamp: presentationTime(microseconds: captureUs),
            decodeTimeStamp: .invalid)
        var sampleSize = CMBlockBufferGetDataLength(block)
        var sample: CMSampleBuffer?
        let status = CMSampleBufferCreateReady(
            allocator: kCFAllocatorDefault, dataBuffer: block, formatDescription: format,
            sampleCount: 1, sampleTimingEntryCount: 1, sampleTimingArray: &timing,
            sampleSizeEntryCount: 1, sampleSizeArray: &sampleSize, sampleBufferOut: &sample)
        guard status == noErr, let sample else { throw SampleBufferError.coreMedia(status) }
        setAttachments(sample, keyframe: keyframe, display: display)
        return sample
    }

    private static func makeFormat(_ codec: NALCodec, _ sets: [[UInt8]]) throws -> CMVideoFormatDescription {
        // The create calls take one pointer per set; joining the sets into one array gives
        // pointers that stay valid together for the call.
        let joined = Array(sets.joined())
        let sizes = sets.map(\.count)
        var format: CMFormatDescription?
        let status = joined.withUnsafeBufferPointer { buffer -> OSStatus in
            guard let base = buffer.baseAddress else { return kCMFormatDescriptionError_InvalidParameter }
            var pointers: [UnsafePointer<UInt8>] = []
            var offset = 0
            for size in sizes {
                pointers.append(base + offset)
                offset += size
            }
            switch codec {
            case .h264:
                return CMVideoFormatDescriptionCreateFromH264ParameterSets(
                    allocator: kCFAllocatorDefault, parameterSetCount: sets.count,
                    parameterSetPointers: pointers, parameterSetSizes: sizes,
                    nalUnitHeaderLength: 4, formatDescriptionOut: &format)
            case .hevc:
                return CMVideoFormatDescriptionCreateFromHEVCParameterSets(
                    allocator: kCFAllocatorDefault, parameterSetCount: sets.count,
                    parameterSetPointers: pointers, parameterSetSizes: sizes,
                    nalUnitHeaderLength: 4, extensions: nil, formatDescriptionOut: &format)
            }
        }
        guard status == noErr, let format else { throw SampleBufferError.coreMedia(status) }
        return format
    }

    private static func makeBlockBuffer(
        _ units: [Range<Int>],
        from source: UnsafeRawBufferPointer
    ) throws -> CMBlockBuffer {
        let size = AnnexB.lengthPrefixedSize(of: units)
        var block: CMBlockBuffer?
        var status = CMBlockBufferCreateWithMemoryBlock(
            allocator: kCFAllocatorDefault, memoryBlock: nil, blockLength: size,
            blockAllocator: kCFAllocatorDefault, customBlockSource: nil, offsetToData: 0,
            dataLength: size, flags: kCMBlockBufferAssureMemoryNowFlag, blockBufferOut: &block)
        guard status == kCMBlockBufferNoErr, let block else { throw SampleBufferError.coreMedia(status) }
        var pointer: UnsafeMutablePointer<CChar>?
        status = CMBlockBufferGetDataPointer(
            block, atOffset: 0, lengthAtOffsetOut: nil, totalLengthOut: nil, dataPointerOut: &pointer)
        guard status == kCMBlockBufferNoErr, let pointer else { throw SampleBufferError.coreMedia(status) }
        AnnexB.writeLengthPrefixed(units, from: source, to: UnsafeMutableRawBufferPointer(start: pointer, count: size))
        return block
    }
}

extension ColorDescription {
    /// What a format description says; for H.264/HEVC CoreMedia fills it from the parameter
    /// sets' colour description (VUI), so a receiver learns the sender's colours in-band.
    /// The extension values are the same strings as CoreVideo's attachment values.
    /// https://developer.apple.com/documentation/coremedia/cmformatdescriptiongetextension(_:extensionkey:)
    public init(of format: CMFormatDescription) {
        self.init(
            matrix: CMFormatDescriptionGetExtension(
                format, extensionKey: kCMFormatDescriptionExtension_YCbCrMatrix) as? String,
            primaries: CMFormatDescriptionGetExtension(
                format, extensionKey: kCMFormatDescriptionExtension_ColorPrimaries) as? String,
            transferFunction: CMFormatDescriptionGetExtension(
                format, extensionKey: kCMFormatDescriptionExtension_TransferFunction) as? String)
    }
}

/// Decoded pictures as samples an `AVSampleBufferDisplayLayer` shows on arrival.
public enum DisplaySample {
    /// Wraps `pixelBuffer` (no copy) in a sample marked to display immediately.
    public static func make(_ pixelBuffer: CVPixelBuffer, captureUs: UInt64) throws -> CMSampleBuffer {
        var format: CMVideoFormatDescription?
        var status = CMVideoFormatDescriptionCreateForImageBuffer(
            allocator: kCFAllocatorDefault, imageBuffer: pixelBuffer, formatDescriptionOut: &format)
        guard status == noErr, let format else { throw SampleBufferError.coreMedia(status) }
        var timing = CMSampleTimingInfo(
            duration: .invalid,
            presentationTimeStamp: presentationTime(microseconds: captureUs),
            decodeTimeStamp: .invalid)
        var sample: CMSampleBuffer?
        status = CMSampleBufferCreateReadyWithImageBuffer(
            allocator: kCFAllocatorDefault, imageBuffer: pixelBuffer, formatDescription: format,
            sampleTiming: &timing, sampleBufferOut: &sample)
        guard status == noErr, let sample else { throw SampleBufferError.coreMedia(status) }
        setAttachments(sample, keyframe: true, display: true)
        return sample
    }
}

extension DecodedFrame {
    /// The picture copied once into a `'420v'` buffer (from `pool` when given) and wrapped
    /// for `AVSampleBufferDisplayLayer.enqueue`.
    public func makeSampleBuffer(pool: CVPixelBufferPool? = nil, colors: ColorDescription? = nil) throws -> CMSampleBuffer {
        try DisplaySample.make(makePixelBuffer(pool: pool, colors: colors), captureUs: captureUs())
    }
}
#endif
