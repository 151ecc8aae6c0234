/// Reads one pickled object (protocols 2–5, and the binary opcodes of 0–1) into a `PickleValue`.
///
/// Nothing is ever executed. Under `.dataOnly` (the default) every opcode that would import or
/// call code is refused with its name and byte offset; under `.torchCheckpoint` allowed globals
/// and calls are kept symbolically. Mutable containers live in arenas while the pickle runs
/// (a memoized list may still be appended to), and become values at STOP.
public struct PickleReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private let policy: PicklePolicy
    private var position: Int

    private var stack: [Node] = []
    private var marks: [Int] = []
    private var memo: [Int: Node] = [:]
    private var memoDense: [Node?] = []  // memo indices are small and dense in practice
    private var memoLength = 0  // distinct memo keys, the index MEMOIZE uses (Python: len(memo))
    private var lists: [[Node]] = []
    private var dicts: [[NodePair]] = []
    private var sets: [[Node]] = []
    private var tuples: [[Node]] = []
    private var objects: [ObjectNode] = []
    private var persistentIDs: [Node] = []

    /// A stack entry: a finished value or a reference into an arena.
    private enum Node {
        case value(PickleValue)
        case list(Int)
        case dict(Int)
        case set(Int)
        case frozenSet(Int)
        case tuple(Int)
        case object(Int)
        case persistentID(Int)
    }

    private struct NodePair {
        var key: Node
        var value: Node
    }

    private struct ObjectNode {
        var callable: Node
        var arguments: Node
        var items: [NodePair] = []
        var appended: [Node] = []
        var state: Node?
    }

    private init(_ bytes: UnsafeBufferPointer<UInt8>, policy: PicklePolicy) {
        self.bytes = bytes
        self.policy = policy
        self.position = 0
    }

    /// Reads the object that starts at the beginning of `bytes`; returns it and the number of
    /// bytes consumed (up to and including STOP). Data after STOP is not looked at.
    public static func read(_ bytes: UnsafeBufferPointer<UInt8>, policy: PicklePolicy = .dataOnly)
        throws(PickleError) -> (value: PickleValue, byteCount: Int)
    {
        var reader = PickleReader(bytes, policy: policy)
        let value = try reader.run()
        return (value, reader.position)
    }

    /// Reads one pickled object from an array of bytes.
    public static func read(_ bytes: [UInt8], policy: PicklePolicy = .dataOnly) throws(PickleError) -> PickleValue {
        do {
            return try bytes.withUnsafeBufferPointer { buffer in try read(buffer, policy: policy).value }
        } catch let error as PickleError {
            throw error
        } catch {
            throw .malformed("\(error)", offset: 0)
        }
    }

    // MARK: - reading primitives

    @inline(__always)
    private mutating func take(_ count: Int, _ opcode: StaticString, at start: Int) throws(PickleError) -> Int {
        guard count >= 0, count <= bytes.count - position else {
            throw .truncated(offset: start, opcode: "\(opcode)")
        }
        let p = position
        position += count
        return p
    }

    @inline(__always)
    private func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: UnsafeRawPointer(bytes.baseAddress! + offset).loadUnaligned(as: T.self))
    }

    /// A str's text as Python decodes it (`PickleString`: lone surrogates become U+FFFD); other
    /// ill-formed UTF-8 is refused, as CPython refuses it (UnicodeDecodeError).
    private func string(at offset: Int, count: Int, _ opcode: StaticString, at start: Int) throws(PickleError) -> String {
        guard count > 0 else { return "" }
        let base = bytes.baseAddress! + offset
        if let text = PickleString.decode(base, count: count) { return text }
        let bad = offset + (UTF8Validation.firstInvalidOffset(base, count: count, allowingSurrogates: true) ?? 0)
        throw .malformed("\(opcode) is not valid UTF-8 at byte offset \(bad)", offset: start)
    }

    @inline(__always)
    private mutating func pop(_ opcode: StaticString, at start: Int) throws(PickleError) -> Node {
        if let floor = marks.last, stack.count <= floor {
            throw .malformed("\(opcode) needs a value but the stack is empty above the MARK", offset: start)
        }
        guard let node = stack.popLast() else {
            throw .malformed("\(opcode) needs a value but the stack is empty", offset: start)
        }
        return node
    }

    @inline(__always)
    private mutating func popMark(_ opcode: StaticString, at start: Int) throws(PickleError) -> ArraySlice<Node> {
        guard let mark = marks.popLast() else { throw .malformed("\(opcode) without a MARK", offset: start) }
        let items = stack[mark...]
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func top(_ opcode: StaticString, at start: Int) throws(PickleError) -> Node {
        if let floor = marks.last, stack.count <= floor {
            throw .malformed("\(opcode) needs a value but the stack is empty above the MARK", offset: start)
        }
        guard let node = stack.last else { throw .malformed("\(opcode) on an empty stack", offset: start) }
        return node
    }

    private mutating func memoPut(_ index: Int, at start: Int) throws(PickleError) {
        let node = try top("memo store", at: start)  // like CPython, nothing below a MARK
        if index >= 0 && index < 1 << 20 {
            if index >= memoDense.count { memoDense.append(contentsOf: repeatElement(nil, count: index - memoDense.count + 1)) }
            if memoDense[index] == nil { memoLength += 1 }
            memoDense[index] = node
        } else {
            if memo.updateValue(node, forKey: index) == nil { memoLength += 1 }
        }
    }

    private mutating func memoGet(_ index: Int, at start: Int) throws(PickleError) {
        let node: Node?
        if index >= 0 && index < memoDense.count { node = memoDense[index] } else { node = memo[index] }
        guard let node else { throw .malformed("memo index \(index) was never stored", offset: start) }
        stack.append(node)
    }

    private func refuse(_ name: String, at start: Int) -> PickleError {
        .refusedOpcode(name, offset: start)
    }

    // MARK: - the opcode loop

    private mutating func run() throws(PickleError) -> PickleValue {
        while true {
            let start = position
            guard position < bytes.count else {
                throw .truncated(offset: start, opcode: "the pickle (no STOP opcode)")
            }
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80:  // PROTO
                let p = try take(1, "PROTO", at: start)
                let proto = Int(bytes[p])
                if proto > 5 { throw .unsupportedProtocol(proto, offset: start) }
            case 0x95:  // FRAME: only a length hint for buffered readers
                let p = try take(8, "FRAME", at: start)
                let length = loadLE(UInt64.self, at: p)
                if length > UInt64(bytes.count - position) {
                    throw .truncated(offset: start, opcode: "FRAME of \(length) bytes")
                }
            case 0x2E:  // STOP
                // Like CPython: the value on top (above any MARK); what lies below it is ignored.
                let node = try pop("STOP", at: start)
                var budget = 16 * position + 100_000
                return try materialize(node, depth: 0, budget: &budget, at: start)
            case 0x7D:  // EMPTY_DICT
                dicts.append([])
                stack.append(.dict(dicts.count - 1))
            case 0x5D:  // EMPTY_LIST
                lists.append([])
                stack.append(.list(lists.count - 1))
            case 0x29:  // EMPTY_TUPLE
                stack.append(.value(.tuple([])))
            case 0x8F:  // EMPTY_SET
                sets.append([])
                stack.append(.set(sets.count - 1))
            case 0x28:  // MARK
                marks.append(stack.count)
            case 0x30:  // POP
                if let floor = marks.last, stack.count == floor { marks.removeLast() }  // pops the mark
                else { _ = try pop("POP", at: start) }
            case 0x31:  // POP_MARK
                _ = try popMark("POP_MARK", at: start)
            case 0x32:  // DUP
                stack.append(try top("DUP", at: start))
            case 0x73:  // SETITEM
                let value = try pop("SETITEM", at: start)
                let key = try pop("SETITEM", at: start)
                try setItems(CollectionOfOne(NodePair(key: key, value: value)), opcode: "SETITEM", at: start)
            case 0x75:  // SETITEMS
                let items = try popMark("SETITEMS", at: start)
                if items.isEmpty { _ = try top("SETITEMS", at: start); break }  // as APPENDS
                guard items.count % 2 == 0 else {
                    throw .malformed("SETITEMS with an odd number of items", offset: start)
                }
                var pairs: [NodePair] = []
                pairs.reserveCapacity(items.count / 2)
                var i = items.startIndex
                while i < items.endIndex {
                    pairs.append(NodePair(key: items[i], value: items[i + 1]))
                    i += 2
                }
                try setItems(pairs, opcode: "SETITEMS", at: start)
            case 0x61:  // APPEND
                let value = try pop("APPEND", at: start)
                try append(CollectionOfOne(value), opcode: "APPEND", at: start)
            case 0x65:  // APPENDS
                let items = try popMark("APPENDS", at: start)
                // An empty batch touches nothing (CPython does not look at what it would extend).
                if items.isEmpty { _ = try top("APPENDS", at: start) } else { try append(items, opcode: "APPENDS", at: start) }
            case 0x90:  // ADDITEMS
                let items = try popMark("ADDITEMS", at: start)
                guard case .set(let id) = try top("ADDITEMS", at: start) else {
                    throw .malformed("ADDITEMS on something that is not a set", offset: start)
                }
                sets[id].append(contentsOf: items)
            case 0x91:  // FROZENSET
                let items = try popMark("FROZENSET", at: start)
                sets.append(Array(items))
                stack.append(.frozenSet(sets.count - 1))
            case 0x6C:  // LIST
                let items = try popMark("LIST", at: start)
                lists.append(Array(items))
                stack.append(.list(lists.count - 1))
            case 0x64:  // DICT
                let items = try popMark("DICT", at: start)
                guard items.count % 2 == 0 else { throw .malformed("DICT with an odd number of items", offset: start) }
                dicts.append([])
                stack.append(.dict(dicts.count - 1))
                var pairs: [NodePair] = []
                var i = items.startIndex
                while i < items.endIndex { pairs.append(NodePair(key: items[i], value: items[i + 1])); i += 2 }
                try setItems(pairs, opcode: "DICT", at: start)
            case 0x74:  // TUPLE
                let items = try popMark("TUPLE", at: start)
                pushTuple(Array(items))
            case 0x85:  // TUPLE1
                let a = try pop("TUPLE1", at: start)
                pushTuple([a])
            case 0x86:  // TUPLE2
                let b = try pop("TUPLE2", at: start)
                let a = try pop("TUPLE2", at: start)
                pushTuple([a, b])
            case 0x87:  // TUPLE3
                let c = try pop("TUPLE3", at: start)
                let b = try pop("TUPLE3", at: start)
                let a = try pop("TUPLE3", at: start)
                pushTuple([a, b, c])
            case 0x4A:  // BININT
                let p = try take(4, "BININT", at: start)
                stack.append(.value(.int(Int(loadLE(Int32.self, at: p)))))
            case 0x4B:  // BININT1
                let p = try take(1, "BININT1", at: start)
                stack.append(.value(.int(Int(bytes[p]))))
            case 0x4D:  // BININT2
                let p = try take(2, "BININT2", at: start)
                stack.append(.value(.int(Int(loadLE(UInt16.self, at: p)))))
            case 0x8A:  // LONG1
                let p = try take(1, "LONG1", at: start)
                let n = Int(bytes[p])
                let q = try take(n, "LONG1", at: start)
                stack.append(.value(long(at: q, count: n)))
            case 0x8B:  // LONG4
                let p = try take(4, "LONG4", at: start)
                let n = Int(loadLE(Int32.self, at: p))
                if n < 0 { throw .malformed("LONG4 with a negative byte count", offset: start) }
                let q = try take(n, "LONG4", at: start)
                stack.append(.value(long(at: q, count: n)))
            case 0x47:  // BINFLOAT (big-endian)
                let p = try take(8, "BINFLOAT", at: start)
                let bits = UInt64(bigEndian: UnsafeRawPointer(bytes.baseAddress! + p).loadUnaligned(as: UInt64.self))
                stack.append(.value(.float(Double(bitPattern: bits))))
            case 0x4E:  // NONE
                stack.append(.value(.none))
            case 0x88:  // NEWTRUE
                stack.append(.value(.bool(true)))
            case 0x89:  // NEWFALSE
                stack.append(.value(.bool(false)))
            case 0x8C:  // SHORT_BINUNICODE
                let p = try take(1, "SHORT_BINUNICODE", at: start)
                let n = Int(bytes[p])
                let q = try take(n, "SHORT_BINUNICODE", at: start)
                stack.append(.value(.string(try string(at: q, count: n, "SHORT_BINUNICODE", at: start))))
            case 0x58:  // BINUNICODE
                let p = try take(4, "BINUNICODE", at: start)
                let n = Int(loadLE(UInt32.self, at: p))
                let q = try take(n, "BINUNICODE", at: start)
                stack.append(.value(.string(try string(at: q, count: n, "BINUNICODE", at: start))))
            case 0x8D:  // BINUNICODE8
                let p = try take(8, "BINUNICODE8", at: start)
                let n = Int(clamping: loadLE(UInt64.self, at: p))
                let q = try take(n, "BINUNICODE8", at: start)
                stack.append(.value(.string(try string(at: q, count: n, "BINUNICODE8", at: start))))
            case 0x43:  // SHORT_BINBYTES
                let p = try take(1, "SHORT_BINBYTES", at: start)
                let n = Int(bytes[p])
                let q = try take(n, "SHORT_BINBYTES", at: start)
                stack.append(.value(.bytes(Array(bytes[q..<(q + n)]))))
            case 0x42:  // BINBYTES
                let p = try take(4, "BINBYTES", at: start)
                let n = Int(loadLE(UInt32.self, at: p))
                let q = try take(n, "BINBYTES", at: start)
                stack.append(.value(.bytes(Array(bytes[q..<(q + n)]))))
            case 0x8E, 0x96:  // BINBYTES8, BYTEARRAY8
                let name: StaticString = opcode == 0x8E ? "BINBYTES8" : "BYTEARRAY8"
                let p = try take(8, name, at: start)
                let n = Int(clamping: loadLE(UInt64.self, at: p))
                let q = try take(n, name, at: start)
                stack.append(.value(.bytes(Array(bytes[q..<(q + n)]))))
            case 0x94:  // MEMOIZE
                try memoPut(memoLength, at: start)
            case 0x71:  // BINPUT
                let p = try take(1, "BINPUT", at: start)
                try memoPut(Int(bytes[p]), at: start)
            case 0x72:  // LONG_BINPUT
                let p = try take(4, "LONG_BINPUT", at: start)
                try memoPut(Int(loadLE(UInt32.self, at: p)), at: start)
            case 0x68:  // BINGET
                let p = try take(1, "BINGET", at: start)
                try memoGet(Int(bytes[p]), at: start)
            case 0x6A:  // LONG_BINGET
                let p = try take(4, "LONG_BINGET", at: start)
                try memoGet(Int(loadLE(UInt32.self, at: p)), at: start)

            // Opcodes that import or call code: refused, or kept symbolic under a permissive policy.
            case 0x63:  // GLOBAL "module\nname\n"
                guard !policy.allowedGlobals.isEmpty else { throw refuse("GLOBAL", at: start) }
                let module = try readLine("GLOBAL", at: start)
                let name = try readLine("GLOBAL", at: start)
                try pushGlobal(module: module, name: name, at: start)
            case 0x93:  // STACK_GLOBAL
                guard !policy.allowedGlobals.isEmpty else { throw refuse("STACK_GLOBAL", at: start) }
                let nameNode = try pop("STACK_GLOBAL", at: start)
                let moduleNode = try pop("STACK_GLOBAL", at: start)
                guard case .value(.string(let name)) = nameNode, case .value(.string(let module)) = moduleNode else {
                    throw .malformed("STACK_GLOBAL needs two strings", offset: start)
                }
                try pushGlobal(module: module, name: name, at: start)
            case 0x52:  // REDUCE
                guard policy.allowsSymbolicCalls else { throw refuse("REDUCE", at: start) }
                let arguments = try pop("REDUCE", at: start)
                let callable = try pop("REDUCE", at: start)
                guard case .value(.global) = callable else {
                    throw .malformed("REDUCE of something that is not an allowed global", offset: start)
                }
                objects.append(ObjectNode(callable: callable, arguments: arguments))
                stack.append(.object(objects.count - 1))
            case 0x62:  // BUILD
                guard policy.allowsSymbolicCalls else { throw refuse("BUILD", at: start) }
                let state = try pop("BUILD", at: start)
                guard case .object(let id) = try top("BUILD", at: start) else {
                    throw .malformed("BUILD on something that is not a (symbolic) object", offset: start)
                }
                objects[id].state = state
            case 0x51:  // BINPERSID
                guard policy.allowsSymbolicCalls else { throw refuse("BINPERSID", at: start) }
                let id = try pop("BINPERSID", at: start)
                persistentIDs.append(id)
                stack.append(.persistentID(persistentIDs.count - 1))
            case 0x50:  // PERSID "text\n"
                guard policy.allowsSymbolicCalls else { throw refuse("PERSID", at: start) }
                let text = try readLine("PERSID", at: start)
                persistentIDs.append(.value(.string(text)))
                stack.append(.persistentID(persistentIDs.count - 1))
            case 0x69: throw refuse("INST", at: start)
            case 0x6F: throw refuse("OBJ", at: start)
            case 0x81: throw refuse("NEWOBJ", at: start)
            case 0x92: throw refuse("NEWOBJ_EX", at: start)
            case 0x82: throw refuse("EXT1", at: start)
            case 0x83: throw refuse("EXT2", at: start)
            case 0x84: throw refuse("EXT4", at: start)
            case 0x97: throw .malformed("NEXT_BUFFER (out-of-band buffers) is not supported", offset: start)
            case 0x98: throw .malformed("READONLY_BUFFER (out-of-band buffers) is not supported", offset: start)
            default:
                throw .unknownOpcode(opcode, offset: start)
            }
        }
    }


    private mutating func readLine(_ opcode: StaticString, at start: Int) throws(PickleError) -> String {
        var end = position
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count else { throw .truncated(offset: start, opcode: "\(opcode)") }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func pushGlobal(module: String, name: String, at start: Int) throws(PickleError) {
        guard policy.allowedGlobals.contains("\(module).\(name)") else {
            throw .refusedGlobal(module: module, name: name, offset: start)
        }
        stack.append(.value(.global(module: module, name: name)))
    }

    private mutating func pushTuple(_ items: [Node]) {
        var values: [PickleValue] = []
        values.reserveCapacity(items.count)
        for item in items {
            guard case .value(let v) = item else {
                tuples.append(items)
                stack.append(.tuple(tuples.count - 1))
                return
            }
            values.append(v)
        }
        stack.append(.value(.tuple(values)))
    }

    private func long(at offset: Int, count: Int) -> PickleValue {
        let big = PickleBigInt(littleEndianTwosComplement: Array(bytes[offset..<(offset + count)]))
        if let value = big.intValue { return .int(value) }
        return .bigInt(big)
    }

    private mutating func setItems<C: Collection>(_ pairs: C, opcode: StaticString, at start: Int) throws(PickleError)
    where C.Element == NodePair {
        switch try top(opcode, at: start) {
        case .dict(let id):
            for pair in pairs {
                guard case .value(let key) = pair.key else {
                    throw .malformed("\(opcode) with an unhashable key (a list, dict or set)", offset: start)
                }
                // Python replaces the value of an existing key in place.
                if let existing = dicts[id].firstIndex(where: { if case .value(key) = $0.key { return true } else { return false } }) {
                    dicts[id][existing].value = pair.value
                } else {
                    dicts[id].append(pair)
                }
            }
        case .object(let id):
            objects[id].items.append(contentsOf: pairs)
        default:
            throw .malformed("\(opcode) on something that is not a dict", offset: start)
        }
    }

    private mutating func append<C: Collection>(_ items: C, opcode: StaticString, at start: Int) throws(PickleError)
    where C.Element == Node {
        switch try top(opcode, at: start) {
        case .list(let id): lists[id].append(contentsOf: items)
        case .object(let id): objects[id].appended.append(contentsOf: items)
        default: throw .malformed("\(opcode) on something that is not a list", offset: start)
        }
    }

    // MARK: - arenas to values

    private func materialize(_ node: Node, depth: Int, budget: inout Int, at offset: Int) throws(PickleError) -> PickleValue {
        if case .value(let v) = node { return v }
        // A container that contains itself would recurse forever, and memo references can
        // share a list so often that the value explodes ("billion laughs"): bound both.
        guard depth < 200 else { throw .malformed("objects nested more than 200 deep, or a container contains itself", offset: offset) }
        budget -= 1
        guard budget >= 0 else { throw .malformed("shared references expand into too many objects", offset: offset) }
        func all(_ nodes: [Node], _ budget: inout Int) throws(PickleError) -> [PickleValue] {
            var out: [PickleValue] = []
            out.reserveCapacity(nodes.count)
            for n in nodes { out.append(try materialize(n, depth: depth + 1, budget: &budget, at: offset)) }
            return out
        }
        func pairs(_ items: [NodePair], _ budget: inout Int) throws(PickleError) -> [PickleDictEntry] {
            var out: [PickleDictEntry] = []
            out.reserveCapacity(items.count)
            for p in items {
                out.append(PickleDictEntry(key: try materialize(p.key, depth: depth + 1, budget: &budget, at: offset),
                                           value: try materialize(p.value, depth: depth + 1, budget: &budget, at: offset)))
            }
            return out
        }
        switch node {
        case .value(let v): return v
        case .list(let i): return .list(try all(lists[i], &budget))
        case .dict(let i): return .dict(try pairs(dicts[i], &budget))
        case .set(let i): return .set(try all(sets[i], &budget))
        case .frozenSet(let i): return .frozenSet(try all(sets[i], &budget))
        case .tuple(let i): return .tuple(try all(tuples[i], &budget))
        case .persistentID(let i):
            return .persistentID(try materialize(persistentIDs[i], depth: depth + 1, budget: &budget, at: offset))
        case .object(let i):
            let o = objects[i]
            var state: PickleValue? = nil
            if let s = o.state { state = try materialize(s, depth: depth + 1, budget: &budget, at: offset) }
            return .object(PickleObject(
                callable: try materialize(o.callable, depth: depth + 1, budget: &budget, at: offset),
                arguments: try materialize(o.arguments, depth: depth + 1, budget: &budget, at: offset),
                items: try pairs(o.items, &budget),
                appended: try all(o.appended, &budget),
                state: state))
        }
    }
}
