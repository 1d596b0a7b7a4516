import NIOCore

/// Runs Swift tasks on one NIO event loop: use it with `withTaskExecutorPreference` around the
/// code that serves one connection, on that connection's loop. Without it every frame crosses
/// from the event loop to Swift's thread pool and every reply crosses back, four thread
/// wake-ups for a ping; under load those wake-ups were the latency tail. Actor-isolated code
/// (the room registry) still runs on its actor's executor.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
