import Foundation

extension JSONEncoder {
    /// The encoder for every JSON file srdpr writes: keys sorted, so equal values give equal bytes.
    /// Foundation's JSONEncoder keeps an object's keys in a Dictionary, whose order Swift seeds
    /// per process; without sorting, two identical runs write different checkpoint indexes.
    public static func sortedKeys(_ formatting: OutputFormatting = []) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = formatting.union(.sortedKeys)
        return encoder
    }
}
