/// A bounded min-heap holding the best `capacity` items seen so far; its root is the worst kept one.
struct TopKHeap<Item: RankOrdered> {
    private(set) var items: [Item] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func offer(_ item: Item) {
        if items.count < capacity {
            items.append(item)
            siftUp(items.count - 1)
        } else if capacity > 0 && Item.ranksBefore(item, items[0]) {
            items[0] = item
            siftDown(0)
        }
    }

    func sortedBestFirst() -> [Item] {
        items.sorted(by: Item.ranksBefore)
    }

    // "Worse" items float to the root.
    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard Item.ranksBefore(items[parent], items[child]) else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var worst = parent
            if left < items.count && Item.ranksBefore(items[worst], items[left]) { worst = left }
            if right < items.count && Item.ranksBefore(items[worst], items[right]) { worst = right }
            if worst == parent { return }
            items.swapAt(parent, worst)
            parent = worst
        }
    }
}
