import Foundation

/// A small SVG line chart: the loss curve a person opens in a browser.
public enum LossPlot {
    public struct Series {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, color: String, points: [(x: Double, y: Double)]) {
            self.name = name; self.color = color; self.points = points
        }
    }

    public static func svg(title: String, xLabel: String, yLabel: String, series: [Series], width: Int = 720, height: Int = 420) -> String {
        let all = series.flatMap(\.points).filter { $0.y.isFinite }
        let left = 64.0, right = 20.0, top = 40.0, bottom = 48.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let xMin = all.map(\.x).min() ?? 0, xMax = max(all.map(\.x).max() ?? 1, xMin + 1)
        var yMin = all.map(\.y).min() ?? 0, yMax = all.map(\.y).max() ?? 1
        if yMax - yMin < 1e-9 { yMin -= 0.5; yMax += 0.5 }
        yMin = max(0, yMin - 0.05 * (yMax - yMin))
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * w }
        func py(_ y: Double) -> Double { top + (1 - (y - yMin) / (yMax - yMin)) * h }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
                of: ">", with: "&gt;")
        }
        func fmt(_ v: Double) -> String { String(format: abs(v) >= 100 ? "%.0f" : (abs(v) >= 1 ? "%.2f" : "%.3f"), v) }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(esc(title))</text>

            """
        for i in 0...5 {
            let y = yMin + (yMax - yMin) * Double(i) / 5, yy = py(y)
            s += "<line x1=\"\(left)\" x2=\"\(left + w)\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(yy + 4)\" text-anchor=\"end\">\(fmt(y))</text>\n"
            let x = xMin + (xMax - xMin) * Double(i) / 5, xx = px(x)
            let xText = xMax - xMin >= 5 ? String(format: "%.0f", x) : fmt(x)
            s += "<text x=\"\(xx)\" y=\"\(top + h + 18)\" text-anchor=\"middle\">\(xText)</text>\n"
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"#888\"/>\n"
        s += "<text x=\"\(left + w / 2)\" y=\"\(Double(height) - 10)\" text-anchor=\"middle\">\(esc(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(top + h / 2)) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        for (i, ser) in series.enumerated() {
            let pts = ser.points.filter { $0.y.isFinite }
            guard !pts.isEmpty else { continue }
            let path = pts.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(ser.color)\" stroke-width=\"1.8\" points=\"\(path)\"/>\n"
            if pts.count < 40 {
                for p in pts { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", px(p.x), py(p.y), ser.color) }
            }
            let ly = top + 16 + Double(i) * 18
            s +=
                """
                <line x1=\"\(left + w - 150)\" x2=\"\(left + w - 126)\" y1=\"\(ly - 4)\" y2=\"\(ly - 4)\" stroke=\"\(ser.color)\" \
                stroke-width=\"3\"/>
                """
            s += "<text x=\"\(left + w - 120)\" y=\"\(ly)\">\(esc(ser.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
