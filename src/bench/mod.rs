//! Measuring tools: a load generator that speaks etcd's gRPC API (`load`), a watch fan-out
//! measurement (`fanout`), and `compare`, which runs both against a 3-member etcd and a
//! 3-member Quorum on this machine in one run and writes the table and chart.
//!
//! Wall-clock time is fine here: these are measuring tools, never part of a member or the
//! simulator.

pub mod chart;
pub mod compare;
pub mod fanout;
pub mod load;

/// Latency samples in microseconds, sorted, with the percentiles etcd's benchmark prints.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn new(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Latencies(samples)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank percentile, `p` in [0, 1]; 0 when there are no samples.
    pub fn percentile_us(&self, p: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((self.0.len() as f64) * p).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn mean_us(&self) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.iter().sum::<u64>() as f64 / self.0.len() as f64
    }

    pub fn max_us(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    /// `p50=… p90=… p99=… p99.9=… max=…`, in microseconds.
    pub fn summary(&self) -> String {
        format!(
            "avg={:.0}us p50={}us p90={}us p99={}us p99.9={}us max={}us",
            self.mean_us(),
            self.percentile_us(0.5),
            self.percentile_us(0.9),
            self.percentile_us(0.99),
            self.percentile_us(0.999),
            self.max_us()
        )
    }
}

/// A progress bar on stderr for `total` steps; hidden when stderr is not a terminal.
pub fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {per_sec}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        // Goal: p99.9 of 1000 samples is the 999th, not an interpolation past the data.
        let l = Latencies::new((1..=1000).rev().collect());
        assert_eq!(l.percentile_us(0.5), 500);
        assert_eq!(l.percentile_us(0.9), 900);
        assert_eq!(l.percentile_us(0.999), 999);
        assert_eq!(l.percentile_us(1.0), 1000);
        assert_eq!(Latencies::new(vec![7]).percentile_us(0.001), 7);
        assert_eq!(Latencies::default().percentile_us(0.5), 0);
    }
}
