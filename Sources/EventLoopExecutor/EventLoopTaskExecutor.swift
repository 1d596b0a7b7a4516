import NIOCore

/// Runs Swift tasks on one NIO event loop: use it with `withTaskExecutorPreference` around the
/// code that serves one connection, on that connection's loop. Without it every frame crosses
/// from the event loop to Swift's thread pool and every reply crosses back, four thread
/// wake-ups for a ping; under load those wake-ups were the latency tail. A default actor called
/// from such a task (the room registry) runs here too while it is free; an actor with its own
/// executor does not.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
