// H.264/HEVC bitstream framing, in plain Swift: no Apple framework, so it can be read (and
// tested) on its own.
//
// VideoToolbox speaks length-prefixed NAL units (AVCC/HVCC, parameter sets kept aside in the
// format description); the wire carries Annex B (start codes, parameter sets in-band before
// each keyframe) so that a receiver can join at any keyframe without a side channel.

/// The NAL unit header rules of the two codecs the engine passes through.
public enum NALCodec: Sendable {
    case h264
    case hevc

    /// The unit type, from the first byte of the NAL unit header.
    public func unitType(_ firstByte: UInt8) -> UInt8 {
        switch self {
        case .h264: return firstByte & 0x1F
        case .hevc: return (firstByte >> 1) & 0x3F
        }
    }

    /// SPS and PPS (H.264); VPS, SPS and PPS (HEVC): what a format description is made of.
    public func isParameterSet(_ type: UInt8) -> Bool {
        switch self {
        case .h264: return type == 7 || type == 8
        case .hevc: return type >= 32 && type <= 34
        }
    }

    /// Access unit delimiters carry nothing a length-prefixed sample needs.
    public func isAccessUnitDelimiter(_ type: UInt8) -> Bool {
        switch self {
        case .h264: return type == 9
        case .hevc: return type == 35
        }
    }
}

public enum AnnexBError: Error, Equatable, Sendable {
    /// A length prefix points past the end of the sample.
    case truncated(offset: Int)
    /// Only 1, 2 and 4 byte length prefixes exist.
    case unsupportedLengthSize(Int)
    /// The bytes hold no start code.
    case noStartCode
}

public enum AnnexB {
    public static let startCode: [UInt8] = [0, 0, 0, 1]

    /// The NAL units of an Annex B stream, as byte ranges without their start codes. Both
    /// 3- and 4-byte start codes are accepted. Zero bytes before a start code are dropped:
    /// a NAL unit never ends in a zero byte, so they are padding or a 4-byte code's lead.
    public static func units(in bytes: UnsafeRawBufferPointer) -> [Range<Int>] {
        var units: [Range<Int>] = []
        var unitStart: Int?
        var i = 0
        while i + 2 < bytes.count {
            if bytes[i + 2] > 1 {
                // No start code can begin at i, i+1 or i+2.
                i += 3
            } else if bytes[i] == 0, bytes[i + 1] == 0, bytes[i + 2] == 1 {
                if let start = unitStart {
                    units.append(start..<trimmedEnd(bytes, from: start, to: i))
                }
                i += 3
                unitStart = i
            } else {
                i += 1
            }
        }
        if let start = unitStart {
            units.append(start..<trimmedEnd(bytes, from: start, to: bytes.count))
        }
        return units.filter { !$0.isEmpty }
    }

    private static func trimmedEnd(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        var end = end
        while end > start, bytes[end - 1] == 0 {
            end -= 1
        }
        return end
    }

    /// Appends length-prefixed NAL units (a VideoToolbox sample) to `out` as Annex B with
    /// 4-byte start codes. Zero-length units are skipped.
    public static func appendFromLengthPrefixed(
        _ sample: UnsafeRawBufferPointer,
        lengthSize: Int,
        to out: inout [UInt8]
    ) throws {
        guard lengthSize == 1 || lengthSize == 2 || lengthSize == 4 else {
            throw AnnexBError.unsupportedLengthSize(lengthSize)
        }
        var offset = 0
        while offset < sample.count {
            guard offset + lengthSize <= sample.count else {
                throw AnnexBError.truncated(offset: offset)
            }
            var length = 0
            for k in 0..<lengthSize {
                length = length << 8 | Int(sample[offset + k])
            }
            offset += lengthSize
            guard length <= sample.count - offset else {
                throw AnnexBError.truncated(offset: offset)
            }
            if length > 0 {
                out.append(contentsOf: startCode)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: sample[offset..<offset + length]))
            }
            offset += length
        }
    }

    /// Appends one NAL unit (a parameter set, say) with its start code.
    public static func append(unit: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(contentsOf: startCode)
        out.append(contentsOf: unit)
    }

    /// Bytes that `writeLengthPrefixed` needs for `units`.
    public static func lengthPrefixedSize(of units: [Range<Int>]) -> Int {
        units.reduce(0) { $0 + 4 + $1.count }
    }

    /// Writes `units` of `source` to `destination` with 4-byte big-endian length prefixes
    /// (what a format description made with `nalUnitHeaderLength: 4` expects); returns the
    /// bytes written. `destination` must hold `lengthPrefixedSize(of: units)` bytes.
    @discardableResult
    public static func writeLengthPrefixed(
        _ units: [Range<Int>],
        from source: UnsafeRawBufferPointer,
        to destination: UnsafeMutableRawBufferPointer
    ) -> Int {
        precondition(destination.count >= lengthPrefixedSize(of: units), "destination too small")
        var offset = 0
        for unit in units {
            let length = UInt32(unit.count)
            destination[offset] = UInt8(truncatingIfNeeded: length >> 24)
            destination[offset + 1] = UInt8(truncatingIfNeeded: length >> 16)
            destination[offset + 2] = UInt8(truncatingIfNeeded: length >> 8)
            destination[offset + 3] = UInt8(truncatingIfNeeded: length)
            offset += 4
            UnsafeMutableRawBufferPointer(rebasing: destination[offset..<offset + unit.count])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[unit]))
            offset += unit.count
        }
        return offset
    }
}
