/// What `samtalerum --version` prints and `samtalerum_build_info` exports. Raised with each
/// release.
public enum BuildInfo {
    public static let version = "0.9.0"
}
