/// CSV quoting, the one implementation (RFC 4180): every writer of CSV text in Tape uses it, and
/// `CSVRow` reads it back (doubled quotes unescaped).
public enum CSV {
    /// Quotes a CSV field when it holds a comma, quote or newline.
    public static func field(_ s: String) -> String {
        if !s.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) { return s }
        var quoted = "\""
        for character in s {
            if character == "\"" { quoted.append("\"") }
            quoted.append(character)
        }
        quoted.append("\"")
        return quoted
    }
}


