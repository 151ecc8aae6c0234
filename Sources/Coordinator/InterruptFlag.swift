import Foundation

/// Ctrl-C handling: the first SIGINT asks the training loop to checkpoint and stop after the
/// current step; a second one exits at once.
public enum InterruptFlag {
    nonisolated(unsafe) public static var raised: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT) { _ in
            if InterruptFlag.raised != 0 { _exit(130) }
            InterruptFlag.raised = 1
        }
    }
}
