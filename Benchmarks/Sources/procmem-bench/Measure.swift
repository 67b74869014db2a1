import CBaseline
import Glibc

/// One line of the report: our figure, the baseline's from the same run, their ratio, the target.
struct Row {
    var number: String
    var name: String
    var unit: String
    var ours: Double
    var raw: Double
    var baseline: String
    var target: Double?
    var oursRSS: Int
    var rawRSS: Int

    var ratio: Double { raw > 0 ? ours / raw : 0 }
}

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Runs `body` once to warm up, then `repetitions` times; returns the median seconds and how far the
/// peak RSS rose above the RSS at the start (buffers allocated before the measurement are not counted).
func measure(repetitions: Int, _ body: () throws -> Void) rethrows -> (seconds: Double, peakRSS: Int) {
    try body()
    CBaseline_reset_peak_rss()
    let before = CBaseline_peak_rss()
    var times: [Double] = []
    for _ in 0..<repetitions {
        let start = now()
        try body()
        times.append(now() - start)
    }
    times.sort()
    // The growth of the peak over the resident set at the start: what this measurement itself needed.
    return (times[times.count / 2], max(0, CBaseline_peak_rss() - before))
}

/// Runs ours and the baseline alternately, so drift on a shared machine hits both alike.
func compare(repetitions: Int, ours: () throws -> Void, raw: () throws -> Void) rethrows
    -> (ours: Double, raw: Double, oursRSS: Int, rawRSS: Int) {
    var oursTimes: [Double] = []
    var rawTimes: [Double] = []
    var oursRSS = 0
    var rawRSS = 0
    for _ in 0..<2 {
        let a = try measure(repetitions: max(1, repetitions / 2), ours)
        let b = try measure(repetitions: max(1, repetitions / 2), raw)
        oursTimes.append(a.seconds)
        rawTimes.append(b.seconds)
        oursRSS = max(oursRSS, a.peakRSS)
        rawRSS = max(rawRSS, b.peakRSS)
    }
    return (oursTimes.min() ?? 0, rawTimes.min() ?? 0, oursRSS, rawRSS)
}

/// For figures near their target on a noisy machine: `rounds` rounds, each timing ours and the
/// baseline back to back (the order alternating between rounds), after one warm-up of each.
/// Returns the median times and the per-round ratios (baseline time / ours), sorted.
/// `prepare` runs, untimed, before every call.
func compareInterleaved(rounds: Int, prepare: () -> Void = {}, ours: () throws -> Void, raw: () throws -> Void) rethrows
    -> (ours: Double, raw: Double, ratios: [Double]) {
    prepare(); try ours()
    prepare(); try raw()
    var oursTimes: [Double] = []
    var rawTimes: [Double] = []
    var ratios: [Double] = []
    for round in 0..<max(1, rounds) {
        var a = 0.0
        var b = 0.0
        if round % 2 == 0 {
            prepare(); let t0 = now(); try ours(); a = now() - t0
            prepare(); let t1 = now(); try raw(); b = now() - t1
        } else {
            prepare(); let t1 = now(); try raw(); b = now() - t1
            prepare(); let t0 = now(); try ours(); a = now() - t0
        }
        oursTimes.append(a)
        rawTimes.append(b)
        ratios.append(a > 0 ? b / a : 0)
    }
    oursTimes.sort()
    rawTimes.sort()
    ratios.sort()
    return (oursTimes[oursTimes.count / 2], rawTimes[rawTimes.count / 2], ratios)
}
