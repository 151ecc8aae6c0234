import Foundation

/// A line chart as inline SVG text (no scripts, no external resources): series of (x, y) points,
/// axes with round tick values, a legend. Used by `srdpr report`.
struct SVGLineChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        /// Draw a dot at every point (few points, e.g. dev evaluations).
        var markers = false
    }

    var title: String
    var xLabel = "step"
    var yLabel: String
    var series: [Series]
    var width = 560.0
    var height = 300.0

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// Round tick values covering [low, high], about `count` of them.
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var values: [Double] = []
        var v = (low / step).rounded(.up) * step
        while v <= high + step * 1e-9 {
            values.append(abs(v) < step * 1e-9 ? 0 : v)
            v += step
        }
        return values
    }

    static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.1e", v) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2g", v).count > 4 ? String(format: "%.1f", v) : String(format: "%.3g", v) }
        return String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func svg() -> String {
        let left = 64.0, right = 16.0, top = 34.0, bottom = 44.0
        let plotW = width - left - right, plotH = height - top - bottom
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var out = "<svg role=\"img\" aria-label=\"\(Self.escape(title))\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
        out += "<text x=\"\(left)\" y=\"20\" font-size=\"14\" font-weight=\"bold\">\(Self.escape(title))</text>"
        guard !all.isEmpty else {
            out += "<text x=\"\(left + plotW / 2)\" y=\"\(top + plotH / 2)\" text-anchor=\"middle\" fill=\"#888\">no data</text></svg>"
            return out
        }
        var (xMin, xMax) = (all.map(\.x).min()!, all.map(\.x).max()!)
        var (yMin, yMax) = (all.map(\.y).min()!, all.map(\.y).max()!)
        if xMax == xMin { xMin -= 1; xMax += 1 }
        if yMax == yMin { let pad = yMin == 0 ? 1 : abs(yMin) * 0.1; yMin -= pad; yMax += pad }
        let yPad = (yMax - yMin) * 0.05
        yMin -= yPad; yMax += yPad
        if yMin < 0 && all.allSatisfy({ $0.y >= 0 }) { yMin = 0 }
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - yMin) / (yMax - yMin) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        // Grid, ticks and labels.
        for y in Self.ticks(yMin, yMax) {
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(y)))\" stroke=\"#e5e5e5\"/>"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" font-size=\"11\" text-anchor=\"end\">\(Self.format(y))</text>"
        }
        for x in Self.ticks(xMin, xMax, count: 6) {
            out += "<line x1=\"\(f(px(x)))\" y1=\"\(f(top + plotH))\" x2=\"\(f(px(x)))\" y2=\"\(f(top + plotH + 4))\" stroke=\"#444\"/>"
            out += "<text x=\"\(f(px(x)))\" y=\"\(f(top + plotH + 17))\" font-size=\"11\" text-anchor=\"middle\">\(Self.format(x))</text>"
        }
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>"
        out += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" font-size=\"12\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>"
        out += "<text transform=\"translate(14,\(f(top + plotH / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>"

        // Lines, markers and the legend (top right, inside the plot, on a white box over the lines).
        var legend = "<rect x=\"\(f(left + plotW - 156))\" y=\"\(f(top + 2))\" width=\"150\" height=\"\(f(Double(series.count) * 15 + 6))\" "
            + "fill=\"#fff\" fill-opacity=\"0.85\" stroke=\"#ddd\"/>"
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if points.count > 1 {
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\""
                    + points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>"
            }
            if s.markers || points.count == 1 {
                for p in points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(color)\"/>" }
            }
            let ly = top + 14 + Double(i) * 15
            legend += "<rect x=\"\(f(left + plotW - 150))\" y=\"\(f(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            legend += "<text x=\"\(f(left + plotW - 135))\" y=\"\(f(ly))\" font-size=\"11\">\(Self.escape(s.name))</text>"
        }
        return out + legend + "</svg>"
    }
}
