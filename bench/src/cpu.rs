//! CPU time (user + system) of this process and of its waited-for
//! children, from `/proc/self/stat`: with the sandbox running inside the
//! benchmark process, "this process" is the sandbox (plus the benchmark's
//! own light polling) and "children" are the `dbops` runs it waited for.
//! Together with wall time they show whether a run was bound by the
//! machine's cores.

use std::time::Duration;

/// Linux reports these times in clock ticks of `USER_HZ`, 100 per second
/// on every architecture Linux supports today.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    /// This process (all its threads).
    pub own: Duration,
    /// Children that have ended and been waited for.
    pub children: Duration,
}

impl CpuTimes {
    /// The CPU time used between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            own: self.own.saturating_sub(earlier.own),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

/// The CPU time of this process and its waited-for children now (zero
/// when `/proc` cannot be read).
pub fn now() -> CpuTimes {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse(&text))
        .unwrap_or_default()
}

/// Fields 14-17 of `/proc/PID/stat` (utime, stime, cutime, cstime),
/// counted after the parenthesised command name, which may hold spaces.
fn parse(stat: &str) -> Option<CpuTimes> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [utime, stime, cutime, cstime] = fields.as_slice() else {
        return None;
    };
    let ticks = |t: u64| Duration::from_millis(t * 1000 / TICKS_PER_SECOND);
    Some(CpuTimes {
        own: ticks(utime + stime),
        children: ticks(cutime + cstime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_and_children_times_after_the_command_name() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 4 0 1 2 3";
        let t = parse(stat).expect("parses");
        assert_eq!(t.own, Duration::from_millis(3000));
        assert_eq!(t.children, Duration::from_millis(100));
        assert!(parse("garbage").is_none());
    }
}
