/// The version of srdpr that `srdpr --version` prints and every worker tells the coordinator when
/// it registers: the processes of one job must run the same version (the control messages, the
/// ring's wire format and the numerics are only tested against themselves).
public enum SoftwareVersion {
    public static let current = "0.1.0"
}
