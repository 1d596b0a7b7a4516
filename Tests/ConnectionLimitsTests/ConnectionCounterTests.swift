import ConnectionLimits
import Testing

@Suite struct ConnectionCounterTests {
    typealias Counter = ConnectionCounter<String>
    let start = ContinuousClock.now

    @Test func refusesBeyondTheListenerCapAndAdmitsAgainWhenOneCloses() {
        var counter = Counter(maxConnections: 3, maxPerAddress: 0)
        for address in ["a", "b", "c"] { #expect(counter.admit(address, now: start).refusal == nil) }
        #expect(counter.admit("d", now: start).refusal == .listenerFull)
        #expect(counter.open == 3)
        _ = counter.release("b", now: start)
        #expect(counter.admit("d", now: start).refusal == nil)
        #expect(counter.open == 3)
    }

    @Test func oneAddressCannotTakeTheWholeListener() {
        var counter = Counter(maxConnections: 100, maxPerAddress: 2)
        #expect(counter.admit("flood", now: start).refusal == nil)
        #expect(counter.admit("flood", now: start).refusal == nil)
        #expect(counter.admit("flood", now: start).refusal == .addressFull)
        #expect(counter.admit("office", now: start).refusal == nil)
        #expect(counter.open(from: "flood") == 2)
        _ = counter.release("flood", now: start)
        #expect(counter.admit("flood", now: start).refusal == nil)
        // Unknown addresses count against the listener only.
        for _ in 0..<10 { #expect(counter.admit(nil, now: start).refusal == nil) }
    }

    @Test func aFloodIsReportedOncePerKindAndItsEndOnceWithTheCount() {
        var counter = Counter(maxConnections: 2, maxPerAddress: 1, quietPeriod: .seconds(60))
        _ = counter.admit("a", now: start)
        var notices: [Counter.Notice] = []
        for i in 0..<500 {
            let (refusal, notice) = counter.admit("a", now: start + .milliseconds(i))
            #expect(refusal == .addressFull)
            if let notice { notices.append(notice) }
        }
        _ = counter.admit("b", now: start + .seconds(1))
        for i in 0..<500 {
            if let notice = counter.admit("c", now: start + .seconds(1) + .milliseconds(i)).notice { notices.append(notice) }
        }
        #expect(notices == [.capReached(.addressFull), .capReached(.listenerFull)])

        // Within the quiet period the episode goes on, and no second report comes.
        #expect(counter.release("b", now: start + .seconds(30)) == nil)
        #expect(counter.admit("b", now: start + .seconds(40)).notice == nil)
        #expect(counter.admit("c", now: start + .seconds(40)).notice == nil)
        // The first event a quiet period after the last refusal ends it.
        let lastRefusal = start + .seconds(40)
        #expect(counter.release("c", now: lastRefusal + .seconds(59)) == nil)
        #expect(counter.release("b", now: lastRefusal + .seconds(60)) == .capCleared(refused: 1001))
        #expect(counter.release("a", now: lastRefusal + .seconds(61)) == nil)
        #expect(counter.open == 0)

        // A new flood is a new episode, reported again.
        _ = counter.admit("a", now: lastRefusal + .seconds(70))
        #expect(counter.admit("a", now: lastRefusal + .seconds(71)).notice == .capReached(.addressFull))
    }

    @Test func releasingNeverGoesBelowZero() {
        var counter = Counter(maxConnections: 1, maxPerAddress: 1)
        _ = counter.release("a", now: start)
        #expect(counter.open == 0)
        #expect(counter.admit("a", now: start).refusal == nil)
        #expect(counter.admit("a", now: start).refusal == .listenerFull)
    }
}

@Suite struct DescriptorBudgetTests {
    @Test func capsThatFitAreKept() {
        let budget = DescriptorBudget(limit: 65_536)
        #expect(budget.fit([20_000, 4096, 2000, 0]) == [20_000, 4096, 2000, 0])
    }

    @Test func capsThatDoNotFitShrinkInProportionUnderTheLimitLessTheReserve() {
        let budget = DescriptorBudget(limit: 4096)
        let caps = budget.fit([20_000, 12_000, 10_000, 0])
        #expect(caps.reduce(0, +) <= 4096 - DescriptorBudget.reserve)
        #expect(caps[3] == 0)
        #expect(caps[0] > caps[1] && caps[1] > caps[2])
        #expect(caps == [1889, 1133, 944, 0])
    }

    @Test func aLimitBelowTheReserveStillLeavesOneConnectionPerListener() {
        #expect(DescriptorBudget(limit: 64).fit([10, 10]) == [1, 1])
    }

    @Test func raisingTheSoftLimitReachesTheHardLimit() {
        let (before, after) = DescriptorBudget.raiseOpenFileLimit()
        #expect(after >= before)
        #expect(after > 0)
    }
}
