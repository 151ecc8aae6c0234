import Foundation

/// Ctrl-C and SIGTERM (what `scancel`, a batch system's time limit or `kill` send) handling: the
/// first one asks the training loop to checkpoint and stop after the current step; a second one
/// stops at once without a checkpoint (``SecondInterrupt``).
public enum InterruptFlag {
    /// How many interrupts arrived: 0, 1, or 2 for two and more.
    nonisolated(unsafe) public static var raised: sig_atomic_t = 0
    /// The first signal received (SIGINT or SIGTERM; 0: none).
    nonisolated(unsafe) public static var firstSignal: sig_atomic_t = 0

    public static func install() {
        SecondInterrupt.prepare()
        for number in [SIGINT, SIGTERM] {
            signal(number) { received in
                let first = InterruptFlag.raised == 0
                if first { InterruptFlag.firstSignal = received }
                InterruptFlag.raised = first ? 1 : 2
                SecondInterrupt.handle(first: first)
            }
        }
    }

    /// "Ctrl-C" or "SIGTERM", for messages.
    public static var cause: String { firstSignal == SIGTERM ? "SIGTERM" : "Ctrl-C" }
}
