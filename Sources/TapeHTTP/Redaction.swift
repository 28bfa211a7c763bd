import Foundation

/// Removes an API key from text (URLs, error messages, bodies) before it is logged, thrown or delivered.
public enum Redaction {
    public static let mask = "***"

    public static func redact(_ text: String, secret: String?) -> String {
        guard let secret, !secret.isEmpty, text.contains(secret) else { return text }
        return text.replacingOccurrences(of: secret, with: mask)
    }

    /// Replaces every occurrence of `secret` in `bytes` with `***` (in place; the array may shrink).
    public static func redact(_ bytes: inout [UInt8], secret: [UInt8]) {
        guard !secret.isEmpty, bytes.count >= secret.count else { return }
        var output: [UInt8] = []
        var index = 0
        var found = false
        while index < bytes.count {
            if bytes[index] == secret[0], index + secret.count <= bytes.count,
                bytes[index..<(index + secret.count)].elementsEqual(secret)
            {
                if !found {
                    output.reserveCapacity(bytes.count); output.append(contentsOf: bytes[..<index]); found = true
                }
                output.append(contentsOf: mask.utf8)
                index += secret.count
                continue
            }
            if found { output.append(bytes[index]) }
            index += 1
        }
        if found { bytes = output }
    }
}
