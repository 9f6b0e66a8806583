//! Process exit codes; documented in the README.

/// The run (or command) succeeded.
pub const SUCCESS: i32 = 0;
/// An unexpected error (cluster unreachable, I/O, internal error).
pub const INTERNAL: i32 = 1;
/// Bad command line or invalid pipeline: nothing was written to the cluster.
pub const VALIDATION: i32 = 2;
/// A step failed and the completed steps were rolled back.
pub const FAILED_ROLLED_BACK: i32 = 3;
/// A step failed and nothing (or not everything) was rolled back
/// (`on_failure = "halt"`, or a compensation failed).
pub const FAILED_NOT_ROLLED_BACK: i32 = 4;
/// Another run holds the target's lock.
pub const LOCK_HELD: i32 = 5;
/// Interrupted by SIGTERM/SIGINT; `always` steps ran, the journal was written.
pub const INTERRUPTED: i32 = 6;
/// `dbops certs`: a certificate expires within the threshold.
pub const CERT_EXPIRING: i32 = 7;
/// A fleet run (`--targets-selector`): at least one target did not succeed
/// (the summary table says which and how).
pub const FLEET_FAILED: i32 = 8;
