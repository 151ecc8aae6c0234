/// The zero-copy read: the fast decoder's slots become a `SampleView` (byte ranges and token
/// ids), with every text field checked to be valid UTF-8, and no String or per-field array made.
/// `Sample.decode` and `ByteDataset.sample(at:)` read their `Sample` from this same view, so the
/// view and the `Sample` paths accept the same pickles.
///
/// The fields are what Python's `sample["questions"]` etc. give after `pickle.loads`: for a key
/// that repeats, the last value (an earlier one of the wrong type does not matter).
extension PickleSampleDecoder {
    enum ViewOutcome: Equatable {
        case ok
        /// Not the usual shape or bad data: the generic reader decides (and names the error).
        case fallback
        /// Field `field` is not valid UTF-8 at byte `offset` (from the start of the pickle).
        case invalidUTF8(field: String, offset: Int)
    }

    /// Fills `view` from the pickle at the start of `bytes`; ranges are relative to `bytes.baseAddress`.
    mutating func fillView(_ bytes: UnsafeBufferPointer<UInt8>, into view: inout SampleView, owner: AnyObject?) -> ViewOutcome {
        defer { finish() }
        view.reset(base: bytes.baseAddress, owner: owner)
        guard let top = start(bytes), case .dict(let d) = top else { return .fallback }
        // Last value wins for a repeated key, as in a Python dict.
        var id: Slot?, questions: Slot?, positives: Slot?, hardnegs: Slot?
        var c = cursor(d)
        while let key = next(&c), let value = next(&c) {
            guard case .string(let s, let n) = key else { continue }
            if isKey(s, n, "sample_id") { id = value }
            else if isKey(s, n, "questions") { questions = value }
            else if isKey(s, n, "positive_contexts") { positives = value }
            else if isKey(s, n, "hardneg_contexts") { hardnegs = value }
        }
        guard case .int(let sampleID)? = id, case .list(let q)? = questions,
              case .list(let p)? = positives, case .list(let h)? = hardnegs else { return .fallback }
        view.sampleID = sampleID

        var index = 0
        var qc = cursor(q)
        while let item = next(&qc) {
            let outcome = addField(item, &view) { "questions[\(index)]" }
            guard outcome == .ok else { return outcome }
            index += 1
        }
        view.questionCount = index
        var count = 0
        var outcome = addPassages(p, &view, "positive_contexts", &count)
        guard outcome == .ok else { return outcome }
        view.positiveCount = count
        outcome = addPassages(h, &view, "hardneg_contexts", &count)
        guard outcome == .ok else { return outcome }
        view.hardnegCount = count
        // A str outside the fields that is not UTF-8: the generic reader refuses it (as Python
        // does) or, for lone surrogates, reads the sample.
        return sawBadString ? .fallback : .ok
    }

    private func addPassages(_ list: Int, _ view: inout SampleView, _ name: String, _ count: inout Int) -> ViewOutcome {
        count = 0
        var c = cursor(list)
        while let item = next(&c) {
            guard case .dict(let d) = item else { return .fallback }
            var title: Slot?, text: Slot?
            var p = cursor(d)
            while let key = next(&p), let value = next(&p) {
                guard case .string(let s, let n) = key else { continue }
                if isKey(s, n, "title") { title = value } else if isKey(s, n, "text") { text = value }
            }
            guard let title, let text else { return .fallback }
            let i = count
            var outcome = addField(title, &view) { "\(name)[\(i)].title" }
            guard outcome == .ok else { return outcome }
            outcome = addField(text, &view) { "\(name)[\(i)].text" }
            guard outcome == .ok else { return outcome }
            count += 1
        }
        return .ok
    }

    /// Records one text field: a validated byte range, or its token ids.
    @inline(__always)
    private func addField(_ slot: Slot, _ view: inout SampleView, _ name: () -> String) -> ViewOutcome {
        switch slot {
        case .string(let start, let count):  // checked when pushed
            view.fields.append(SampleView.FieldRange(start: start, count: count, isTokens: false))
            return .ok
        case .badString(let start, let count):
            // Lone surrogates only: Python reads them (PickleString), the generic path makes the String.
            guard let bad = UTF8Validation.firstInvalidOffset(bytes.baseAddress! + start, count: count,
                                                              allowingSurrogates: true) else { return .fallback }
            return .invalidUTF8(field: name(), offset: start + bad)
        case .list(let id):
            let first = view.tokenIDs.count
            var c = cursor(id)
            while let item = next(&c) {
                guard case .int(let v) = item else { return .fallback }
                view.tokenIDs.append(v)
            }
            view.fields.append(SampleView.FieldRange(start: first, count: view.tokenIDs.count - first, isTokens: true))
            return .ok
        default:
            return .fallback
        }
    }
}
