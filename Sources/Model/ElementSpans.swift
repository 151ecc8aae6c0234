/// Sorted, disjoint element ranges of a flat buffer, and their split into equal shares for threads.
enum ElementSpans {
    /// Part `part` of `parts` of `spans` laid end to end: elements [total·part/parts, total·(part+1)/parts)
    /// of them, as ranges of the buffer.
    static func share(of spans: [Range<Int>], part: Int, of parts: Int) -> [Range<Int>] {
        let total = spans.reduce(0) { $0 + $1.count }
        var skip = total * part / parts, left = total * (part + 1) / parts - skip
        var share: [Range<Int>] = []
        for span in spans where left > 0 {
            if skip >= span.count { skip -= span.count; continue }
            let lo = span.lowerBound + skip, hi = min(span.upperBound, lo + left)
            skip = 0
            left -= hi - lo
            share.append(lo..<hi)
        }
        return share
    }

    /// The elements of `whole` outside `holes` (sorted and disjoint), as sorted disjoint ranges.
    static func complement(of holes: [Range<Int>], in whole: Range<Int>) -> [Range<Int>] {
        var spans: [Range<Int>] = [], start = whole.lowerBound
        for hole in holes {
            let lo = max(hole.lowerBound, whole.lowerBound), hi = min(hole.upperBound, whole.upperBound)
            guard lo < hi else { continue }
            if start < lo { spans.append(start..<lo) }
            start = max(start, hi)
        }
        if start < whole.upperBound { spans.append(start..<whole.upperBound) }
        return spans
    }
}
