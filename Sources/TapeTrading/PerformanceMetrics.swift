#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TapeCore
import TapeGraph

/// One round trip of one symbol: from flat to flat (a fill that goes through zero closes one and opens the next).
public struct RoundTrip: Sendable, Equatable {
    public var symbol: SymbolID
    /// +1 long, −1 short.
    public var direction: Double
    public var entryTime: Nanos
    /// The fill that closed it; nil while open.
    public var exitTime: Nanos?
    /// The largest absolute position reached.
    public var quantity: Double
    /// Average entry price (quantity-weighted over the opening fills).
    public var entryPrice: Double
    /// Average exit price over the closing fills (NaN while nothing closed).
    public var exitPrice: Double
    /// Fees of the opening and closing fills (a fill that reverses is split pro rata by quantity).
    public var entryFees: Double
    public var exitFees: Double
    /// Realised PnL of the closing fills − all its fees (closed trips; while open, the part closed so far).
    public var pnl: Double

    public var isOpen: Bool { exitTime == nil }
}

/// Summary statistics of a backtest (docs/backtesting.md, "Metrics", gives each formula).
///
/// Inputs: the **total** equity rows in emission order (several at one instant, one per symbol's bar close:
/// the last one counts), the fills, the initial cash and the periods per year of the marking timeframe.
/// Returns are per mark: r_t = E_t / E_{t−1} − 1, t = 1…N, with E_0 = the initial cash.
public struct PerformanceMetrics: Sendable, Equatable {
    /// N: the number of marks (returns).
    public var periods = 0
    public var periodsPerYear = 0.0
    public var startEquity = 0.0
    public var endEquity = 0.0
    /// E_N / E_0 − 1.
    public var totalReturn = Double.nan
    /// (1 + total)^(P/N) − 1; −1 when the equity ended at or below zero.
    public var annualizedReturn = Double.nan
    /// stdev(r, ddof 1) × √P.
    public var volatility = Double.nan
    /// mean(r) / stdev(r, ddof 1) × √P (risk-free rate 0).
    public var sharpe = Double.nan
    /// mean(r) / √(mean(min(r, 0)²)) × √P (downside deviation over all N returns, target 0).
    public var sortino = Double.nan
    /// max over t of 1 − E_t / max(E_0 … E_t), a fraction ≥ 0.
    public var maxDrawdown = 0.0
    /// Of that deepest drawdown: periods from its peak to the first mark back at or above the peak (to the last
    /// mark when it never recovered).
    public var maxDrawdownDurationPeriods = 0
    /// annualised return / max drawdown (NaN when there was no drawdown).
    public var calmar = Double.nan
    /// Σ |price × quantity| over the fills / mean(E_1 … E_N).
    public var turnover = Double.nan
    /// Closed round trips.
    public var tradeCount = 0
    /// Closed round trips with PnL > 0 / closed round trips.
    public var hitRate = Double.nan
    /// Mean PnL of the winning / losing closed round trips (the loss is negative).
    public var averageWin = Double.nan
    public var averageLoss = Double.nan
    /// Σ winning PnL / |Σ losing PnL| (∞ with wins and no losses, NaN with neither).
    public var profitFactor = Double.nan
    /// Marks with a position (gross exposure > 0) / N.
    public var exposure = Double.nan
    public var feesPaid = 0.0

    public init() {}

    /// 365 days of the marking timeframe: 525,600 for 1m (crypto trades every minute of the year; for markets
    /// with sessions pass the periods per year explicitly).
    public static func periodsPerYear(_ timeframe: Timeframe) -> Double {
        precondition(timeframe.seconds > 0, "a timeframe is positive")
        return 365 * 86_400 / Double(timeframe.seconds)
    }

    public static func compute(equity rows: [EquityRecord], fills: [FillRecord], initialCash: Double,
                               periodsPerYear: Double) -> PerformanceMetrics {
        precondition(initialCash > 0, "returns need a positive initial cash")
        precondition(periodsPerYear > 0, "periods per year is positive")
        var metrics = PerformanceMetrics()
        metrics.periodsPerYear = periodsPerYear
        metrics.startEquity = initialCash

        // The last total row per instant.
        var equity: [Double] = []
        var exposed: [Bool] = []
        var lastTime = Nanos.min
        for row in rows where row.symbol == nil {
            if row.time == lastTime && !equity.isEmpty {
                equity[equity.count - 1] = row.equity
                exposed[exposed.count - 1] = row.grossExposure > 0
            } else {
                equity.append(row.equity)
                exposed.append(row.grossExposure > 0)
            }
            lastTime = row.time
        }
        let count = equity.count
        metrics.periods = count
        metrics.feesPaid = fills.reduce(0) { $0 + $1.fee }
        let trips = roundTrips(fills)
        fillTradeStatistics(&metrics, trips.filter { !$0.isOpen })
        guard count > 0 else { return metrics }

        metrics.endEquity = equity[count - 1]
        metrics.totalReturn = equity[count - 1] / initialCash - 1
        let years = Double(count) / periodsPerYear
        metrics.annualizedReturn = 1 + metrics.totalReturn <= 0 ? -1 : pow(1 + metrics.totalReturn, 1 / years) - 1

        var returns: [Double] = []
        returns.reserveCapacity(count)
        var previous = initialCash
        for value in equity {
            returns.append(value / previous - 1)
            previous = value
        }
        let mean = returns.reduce(0, +) / Double(count)
        let root = periodsPerYear.squareRoot()
        if count > 1 {
            var squares = 0.0
            for value in returns { squares += (value - mean) * (value - mean) }
            let deviation = (squares / Double(count - 1)).squareRoot()
            metrics.volatility = deviation * root
            metrics.sharpe = deviation > 0 ? mean / deviation * root : .nan
        }
        var downside = 0.0
        for value in returns where value < 0 { downside += value * value }
        let downsideDeviation = (downside / Double(count)).squareRoot()
        metrics.sortino = downsideDeviation > 0 ? mean / downsideDeviation * root : .nan

        // Drawdown over E_0 … E_N (index 0 is the initial cash).
        var peak = initialCash
        var peakIndex = 0
        var deepest = 0.0
        var deepestPeakIndex = 0
        var deepestPeak = initialCash
        for (offset, value) in equity.enumerated() {
            let index = offset + 1
            if value >= peak {
                peak = value
                peakIndex = index
            }
            let drawdown = 1 - value / peak
            if drawdown > deepest {
                deepest = drawdown
                deepestPeakIndex = peakIndex
                deepestPeak = peak
            }
        }
        metrics.maxDrawdown = deepest
        if deepest > 0 {
            var recovery = count
            for offset in deepestPeakIndex..<count where equity[offset] >= deepestPeak {
                recovery = offset + 1
                break
            }
            metrics.maxDrawdownDurationPeriods = recovery - deepestPeakIndex
            metrics.calmar = metrics.annualizedReturn / deepest
        }

        var traded = 0.0
        for fill in fills { traded += (fill.price * fill.quantity).magnitude }
        metrics.turnover = traded / (equity.reduce(0, +) / Double(count))
        metrics.exposure = Double(exposed.filter { $0 }.count) / Double(count)
        return metrics
    }

    private static func fillTradeStatistics(_ metrics: inout PerformanceMetrics, _ closed: [RoundTrip]) {
        metrics.tradeCount = closed.count
        guard !closed.isEmpty else { return }
        let wins = closed.filter { $0.pnl > 0 }.map(\.pnl)
        let losses = closed.filter { $0.pnl < 0 }.map(\.pnl)
        metrics.hitRate = Double(wins.count) / Double(closed.count)
        let won = wins.reduce(0, +)
        let lost = losses.reduce(0, +)
        if !wins.isEmpty { metrics.averageWin = won / Double(wins.count) }
        if !losses.isEmpty { metrics.averageLoss = lost / Double(losses.count) }
        if !losses.isEmpty {
            metrics.profitFactor = won / lost.magnitude
        } else if !wins.isEmpty {
            metrics.profitFactor = .infinity
        }
    }

    /// Round trips from the fills (in fill order), per symbol, average cost.
    public static func roundTrips(_ fills: [FillRecord]) -> [RoundTrip] {
        var trips: [RoundTrip] = []
        // Per symbol: the index of its open trip in `trips`, its position, the closed quantity and Σ exit value.
        var open: [SymbolID: (trip: Int, position: Double, closed: Double, exitValue: Double)] = [:]
        for fill in fills {
            let signed = fill.side.sign * fill.quantity
            var remaining = fill.quantity
            if var state = open[fill.symbol], state.position != 0, (state.position > 0) != (signed > 0) {
                let closing = min(remaining, state.position.magnitude)
                let share = closing / fill.quantity
                var trip = trips[state.trip]
                trip.pnl += closing * (fill.price - trip.entryPrice) * trip.direction
                let fee = fill.fee * share
                trip.exitFees += fee
                trip.pnl -= fee
                state.closed += closing
                state.exitValue += closing * fill.price
                trip.exitPrice = state.exitValue / state.closed
                state.position += trip.direction * -closing
                if state.position == 0 { trip.exitTime = fill.time }
                trips[state.trip] = trip
                open[fill.symbol] = state.position == 0 ? nil : state
                remaining -= closing
                if remaining <= 0 { continue }
            }
            let fee = fill.fee * (remaining / fill.quantity)
            if var state = open[fill.symbol] {
                var trip = trips[state.trip]
                let total = state.position.magnitude + remaining
                trip.entryPrice = (state.position.magnitude * trip.entryPrice + remaining * fill.price) / total
                trip.entryFees += fee
                trip.pnl -= fee
                trip.quantity = max(trip.quantity, total)
                state.position += fill.side.sign * remaining
                trips[state.trip] = trip
                open[fill.symbol] = state
            } else {
                trips.append(RoundTrip(symbol: fill.symbol, direction: fill.side.sign, entryTime: fill.time,
                                       exitTime: nil, quantity: remaining, entryPrice: fill.price, exitPrice: .nan,
                                       entryFees: fee, exitFees: 0, pnl: -fee))
                open[fill.symbol] = (trips.count - 1, fill.side.sign * remaining, 0, 0)
            }
        }
        return trips
    }
}
