extension Array where Element == Batch {
    /// FNV-1a over every token id and mask value of the step's batches: equal hashes mean equal batches.
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func eat(_ v: Int32) { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x0000_0100_0000_01B3 }
        for b in self {
            for m in [b.questions] + b.contextParts {
                eat(Int32(m.rows)); eat(Int32(m.columns))
                m.ids.forEach(eat); m.mask.forEach(eat)
            }
            for id in b.sampleIDs { eat(Int32(truncatingIfNeeded: id)) }
            b.duplicateMask?.forEach(eat); b.hardnegMask?.forEach(eat); b.inbatchMask?.forEach { eat($0 ? 1 : 0) }
        }
        return String(h, radix: 16)
    }
}
