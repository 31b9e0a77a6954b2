//! The live line a long recording shows, so whoever watches a learning window sees that it
//! works: elapsed time, cgroups, distinct syscalls, events and losses so far. On a terminal
//! the line is redrawn in place every second; otherwise (a log, CI) a plain line is printed
//! every 30 seconds.

use std::{
    collections::BTreeMap,
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

use profiler_common::bitmap::CgroupSyscalls;

/// What the line reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub cgroups: usize,
    /// Distinct (ABI, syscall) pairs over all cgroups, before and after the filter.
    pub syscalls: usize,
    pub events: u64,
    pub lost: u64,
}

impl Counts {
    /// The syscall and cgroup counts of the kernel's bitmaps.
    pub fn of_bitmaps(bitmaps: &BTreeMap<u64, CgroupSyscalls>, events: u64, lost: u64) -> Self {
        let mut seen =
            [[0u64; profiler_common::bitmap::WORDS]; profiler_common::bitmap::Abi::COUNT];
        for cg in bitmaps.values() {
            for (abi, words) in seen.iter_mut().enumerate() {
                for (w, word) in words.iter_mut().enumerate() {
                    *word |= cg.before[abi][w] | cg.after[abi][w];
                }
            }
        }
        Counts {
            cgroups: bitmaps.len(),
            syscalls: seen.iter().flatten().map(|w| w.count_ones() as usize).sum(),
            events,
            lost,
        }
    }
}

/// The line itself.
pub fn line(elapsed: Duration, c: &Counts) -> String {
    let secs = elapsed.as_secs();
    let lost = if c.lost == 0 {
        "none lost".to_string()
    } else {
        format!("{} LOST", c.lost)
    };
    format!(
        "recording {}:{:02}:{:02}: {} cgroup(s), {} syscall(s), {} event(s), {lost}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        c.cgroups,
        c.syscalls,
        c.events
    )
}

/// Decides when to show the line and where.
pub struct Progress {
    started: Instant,
    last: Option<Instant>,
    terminal: bool,
    drawn: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            started: Instant::now(),
            last: None,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn every(&self) -> Duration {
        if self.terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(30)
        }
    }

    /// Whether the line is due (so the caller reads the maps only then).
    pub fn due(&self) -> bool {
        match self.last {
            None => self.started.elapsed() >= self.every(),
            Some(t) => t.elapsed() >= self.every(),
        }
    }

    pub fn show(&mut self, counts: &Counts) {
        self.last = Some(Instant::now());
        let text = line(self.started.elapsed(), counts);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2Kprofgen: {text}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "profgen: {text}");
        }
    }

    /// Ends the redrawn line so the next output starts on its own line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_distinct_syscalls_over_cgroups() {
        let mut a = CgroupSyscalls::ZERO;
        a.after[0][0] = 0b1011; // read, write, open (x86_64 0, 1, 3)
        let mut b = CgroupSyscalls::ZERO;
        b.before[0][0] = 0b0001; // read again
        b.after[1][0] = 0b0001; // i386 restart_syscall
        let bitmaps = BTreeMap::from([(1, a), (2, b)]);
        let c = Counts::of_bitmaps(&bitmaps, 120, 0);
        assert_eq!(
            c,
            Counts {
                cgroups: 2,
                syscalls: 4,
                events: 120,
                lost: 0
            }
        );
        assert_eq!(
            line(Duration::from_secs(3725), &c),
            "recording 1:02:05: 2 cgroup(s), 4 syscall(s), 120 event(s), none lost"
        );
        let lossy = Counts { lost: 7, ..c };
        assert!(line(Duration::ZERO, &lossy).ends_with("7 LOST"));
    }
}
