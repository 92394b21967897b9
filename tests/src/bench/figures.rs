//! The figures the benchmarks print: latency percentiles, memory and CPU of a process from
//! `/proc`, aligned result tables; and the unique payment codes and random numbers their
//! drivers use.

use std::time::Duration;

use crate::BoxError;

type Result<T, E = BoxError> = std::result::Result<T, E>;

/// A unique password-free payment code for sequence number `n` (< 10^7): `13`, eight zeros,
/// then `n` in eight digits, so digits 11–14 never read `9999` (the simulator's behaviour
/// marker) and no code is used twice in a run.
pub fn password_free_code(run: u8, n: u64) -> String {
    format!("1{}{:08}{n:08}", run % 6, 0)
}

/// A uniformly random number in `[0, 1)`.
pub fn random_unit() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Latency figures of a sample.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Their mean.
    pub mean: Duration,
    /// The median (nearest rank).
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The largest sample.
    pub max: Duration,
    /// The smallest sample.
    pub min: Duration,
}

impl Percentiles {
    /// The figures of `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        let total: Duration = samples.iter().sum();
        Percentiles {
            count: samples.len(),
            mean: if samples.is_empty() {
                Duration::ZERO
            } else {
                total / samples.len() as u32
            },
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: samples.last().copied().unwrap_or_default(),
            min: samples.first().copied().unwrap_or_default(),
        }
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .ok_or("malformed status line")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Seconds with three decimals.
pub fn secs(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// One row of the results table.
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// The target, as text.
    pub target: String,
    /// The figure, as text.
    pub measured: String,
    /// Whether the target was met (`None`: no target).
    pub verdict: Option<bool>,
}

impl Row {
    /// A row.
    pub fn new(metric: &str, target: &str, measured: String, verdict: Option<bool>) -> Row {
        Row {
            metric: metric.to_owned(),
            target: target.to_owned(),
            measured,
            verdict,
        }
    }
}

/// Prints rows as an aligned table.
pub fn print_table(title: &str, rows: &[Row]) {
    let width = |f: fn(&Row) -> usize, header: &str| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(header.chars().count())
    };
    let w0 = width(|row| row.metric.chars().count(), "metric");
    let w1 = width(|row| row.target.chars().count(), "target");
    let w2 = width(|row| row.measured.chars().count(), "measured");
    println!();
    println!("{title}");
    println!(
        "{:<w0$}  {:<w1$}  {:>w2$}  result",
        "metric", "target", "measured"
    );
    println!("{}", "-".repeat(w0 + w1 + w2 + 12));
    for row in rows {
        let verdict = match row.verdict {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {verdict}",
            row.metric, row.target, row.measured
        );
    }
}

/// The Prometheus `/metrics` text.
pub async fn metrics(base: &str) -> Result<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?)
}

/// CPU time (user, system) and context switches (voluntary, involuntary) of a process, all
/// threads included, from `/proc/<pid>/stat` and `/proc/<pid>/task/*/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel.
    pub system: Duration,
    /// Voluntary context switches.
    pub voluntary_switches: u64,
    /// Involuntary context switches.
    pub involuntary_switches: u64,
}

impl CpuSample {
    /// The process's figures now.
    pub fn of(pid: u32) -> Result<CpuSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = &stat[stat.rfind(')').ok_or("malformed stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the state.
        let ticks = |index: usize| -> Result<Duration> {
            let ticks: u64 = fields.get(index).ok_or("short stat")?.parse()?;
            // USER_HZ is 100 on Linux.
            Ok(Duration::from_millis(ticks * 10))
        };
        let mut sample = CpuSample {
            user: ticks(11)?,
            system: ticks(12)?,
            ..CpuSample::default()
        };
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                let mut words = line.split_whitespace();
                match (
                    words.next(),
                    words.next().and_then(|n| n.parse::<u64>().ok()),
                ) {
                    (Some("voluntary_ctxt_switches:"), Some(n)) => sample.voluntary_switches += n,
                    (Some("nonvoluntary_ctxt_switches:"), Some(n)) => {
                        sample.involuntary_switches += n;
                    }
                    _ => {}
                }
            }
        }
        Ok(sample)
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuSample {
        CpuSample {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            voluntary_switches: self.voluntary_switches - earlier.voluntary_switches,
            involuntary_switches: self.involuntary_switches - earlier.involuntary_switches,
        }
    }
}

/// The 1-minute load average (other work on the machine disturbs the figures).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
