import Foundation

/// Ctrl-C handling: the first SIGINT asks the training loop to checkpoint and stop after the
/// current step; a second one exits at once.
public enum InterruptFlag {
    nonisolated(unsafe) public static var raised: sig_atomic_t = 0

    public static func install() {
        SecondInterrupt.prepare()
        signal(SIGINT) { _ in
            let first = InterruptFlag.raised == 0
            InterruptFlag.raised = first ? 1 : 2
            SecondInterrupt.handle(first: first)
        }
    }
}
