import Foundation
import Model

/// What Ctrl-C does beyond `InterruptFlag`: the first one says that a checkpoint is coming and how
/// to skip it; the second one stops at once without a checkpoint, saying which checkpoint is the
/// last, and removes a half-written checkpoint file. A single process exits inside the signal
/// handler (the current step may take long); a coordinator instead lets its loop, which polls
/// the flag several times a second, order every worker to stop first (`exitsInHandler = false`).
public enum SecondInterrupt {
    /// False while a coordinator runs: its loop handles the second interrupt.
    nonisolated(unsafe) public static var exitsInHandler = true
    nonisolated(unsafe) private static var lastCheckpointMessage: UnsafeMutablePointer<CChar>? =
        strdup("\nsecond interrupt (Ctrl-C): stopping at once without a checkpoint; no checkpoint was written yet\n")
    nonisolated(unsafe) private static let firstMessage: UnsafeMutablePointer<CChar>? =
        strdup("\ninterrupt (Ctrl-C): finishing the current step, then writing a checkpoint; Ctrl-C again stops at once without one\n")
    nonisolated(unsafe) private static let firstTerminationMessage: UnsafeMutablePointer<CChar>? =
        strdup("\nSIGTERM: finishing the current step, then writing a checkpoint; a second signal stops at once without one\n")

    /// The message of a second interrupt (also the text a coordinator's error uses).
    public static func message(lastCheckpoint: String?) -> String {
        "second interrupt (Ctrl-C): stopping at once without a checkpoint; "
            + (lastCheckpoint.map { "the last one is \($0) (resume with model_file=\($0))" } ?? "no checkpoint was written yet")
    }

    /// Records the newest checkpoint for the message (the previous string is not freed: the
    /// handler may be reading it; one short string per checkpoint).
    public static func noteCheckpoint(_ path: String?) {
        lastCheckpointMessage = strdup("\n" + message(lastCheckpoint: path) + "\n")
    }

    /// Called from the SIGINT handler: only async-signal-safe calls (write, unlink, _exit).
    static func handle(first: Bool) {
        if first {
            if let text = InterruptFlag.firstSignal == SIGTERM ? firstTerminationMessage : firstMessage {
                _ = write(STDERR_FILENO, text, strlen(text))
            }
            return
        }
        guard exitsInHandler else { return }
        if let text = lastCheckpointMessage { _ = write(STDERR_FILENO, text, strlen(text)) }
        CheckpointInFlight.removeTemporaryFile()
        _exit(130)
    }

    /// Touches the statics so that no lazy initialisation happens inside the handler.
    static func prepare() {
        _ = exitsInHandler
        _ = lastCheckpointMessage
        _ = firstMessage
        _ = firstTerminationMessage
    }
}
