//! Runs one phase of a benchmark: `total` operations shared by `workers`
//! concurrent tasks (each with one request in flight), stopped at a
//! deadline, with every operation's latency in an HdrHistogram.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tracing::warn;

use crate::report::Figures;

/// A latency histogram in microseconds, from 1 µs to one hour at three
/// significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records a duration into a [`histogram`], clamped to its range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// A quantile of a [`histogram`], in milliseconds.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { f64::NAN } else { h.value_at_quantile(q) as f64 / 1000.0 }
}

/// The highest value of a [`histogram`], in milliseconds.
pub fn max_ms(h: &Histogram<u64>) -> f64 {
    if h.is_empty() { f64::NAN } else { h.max() as f64 / 1000.0 }
}

/// What a phase did.
#[derive(Debug)]
pub struct Phase {
    pub name: &'static str,
    /// Operations asked for.
    pub total: usize,
    /// Operations that succeeded.
    pub done: u64,
    /// Operations that failed (not counting those the deadline cut off).
    pub errors: u64,
    /// From the first operation's start to the last one's end.
    pub wall: Duration,
    /// Latency of the operations that succeeded.
    pub latency: Histogram<u64>,
    pub first_error: Option<String>,
    /// Whether the deadline stopped the phase before every operation ran.
    pub timed_out: bool,
}

impl Phase {
    /// Throughput: successful operations over the phase's wall time.
    pub fn per_s(&self) -> f64 {
        self.done as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Fails when the deadline stopped the phase: its figures would be
    /// partial, or when every operation failed. Otherwise failed operations
    /// are only counted (the `errors` figure).
    pub fn ensure_finished(&self) -> anyhow::Result<()> {
        if self.timed_out {
            anyhow::bail!("the {} phase hit the --timeout after {} of {} operations", self.name, self.done, self.total);
        }
        if self.done == 0 && self.total > 0 {
            anyhow::bail!("every {} operation failed; the first: {}", self.name, self.first_error.as_deref().unwrap_or("?"));
        }
        Ok(())
    }

    /// Adds `{plural}_per_s`, `{singular}_p50_ms`, `{singular}_p99_ms`,
    /// `{singular}_max_ms`.
    pub fn add_to(&self, f: &mut Figures, plural: &str, singular: &str) {
        f.measure(format!("{plural}_per_s"), self.per_s());
        f.measure(format!("{singular}_p50_ms"), quantile_ms(&self.latency, 0.50));
        f.measure(format!("{singular}_p99_ms"), quantile_ms(&self.latency, 0.99));
        f.measure(format!("{singular}_max_ms"), max_ms(&self.latency));
    }
}

/// Runs `op(worker, i)` for every `i` in `0..total` on `workers` tasks.
/// Each task takes the next index when its previous operation ends, so
/// exactly `workers` operations are in flight until the work runs out.
pub async fn run<F, Fut, E>(name: &'static str, workers: usize, total: usize, deadline: Instant, op: F) -> Phase
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let (mut done, mut errors, mut first_error, mut timed_out) = (0u64, 0u64, None, false);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                if Instant::now() >= deadline {
                    timed_out = true;
                    break;
                }
                let t0 = Instant::now();
                match tokio::time::timeout_at(deadline, op(w, i)).await {
                    Ok(Ok(())) => {
                        record(&mut h, t0.elapsed());
                        done += 1;
                    }
                    Ok(Err(e)) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                    Err(_) => {
                        // cut off by the deadline: not the server's failure
                        timed_out = true;
                        break;
                    }
                }
            }
            (h, done, errors, first_error, timed_out)
        }));
    }
    let mut phase =
        Phase { name, total, done: 0, errors: 0, wall: Duration::ZERO, latency: histogram(), first_error: None, timed_out: false };
    for t in tasks {
        match t.await {
            Ok((h, done, errors, first_error, timed_out)) => {
                let _ = phase.latency.add(&h);
                phase.done += done;
                phase.errors += errors;
                phase.timed_out |= timed_out;
                if phase.first_error.is_none() {
                    phase.first_error = first_error;
                }
            }
            Err(e) => {
                phase.errors += 1;
                phase.first_error.get_or_insert_with(|| format!("worker task failed: {e}"));
            }
        }
    }
    phase.wall = start.elapsed();
    if phase.errors > 0 {
        warn!(phase = name, errors = phase.errors, first = phase.first_error.as_deref().unwrap_or(""), "operations failed");
    }
    phase
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn should_run_every_operation_once() {
        let seen = Arc::new((0..100).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let s = seen.clone();
        let p = run("test", 7, 100, Instant::now() + Duration::from_secs(10), move |_, i| {
            let s = s.clone();
            async move {
                s[i].fetch_add(1, Ordering::Relaxed);
                Ok::<_, String>(())
            }
        })
        .await;
        assert_eq!((p.done, p.errors), (100, 0));
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert_eq!(p.latency.len(), 100);
        p.ensure_finished().unwrap();
    }

    #[tokio::test]
    async fn should_count_errors_and_keep_the_first() {
        let p = run("test", 2, 10, Instant::now() + Duration::from_secs(10), |_, i| async move {
            if i % 2 == 0 { Err(format!("bad {i}")) } else { Ok(()) }
        })
        .await;
        assert_eq!((p.done, p.errors), (5, 5));
        assert!(p.first_error.unwrap().starts_with("bad"));
    }

    #[tokio::test(start_paused = true)]
    async fn should_stop_at_the_deadline() {
        let p = run("test", 4, 1_000_000, Instant::now() + Duration::from_secs(1), |_, _| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, String>(())
        })
        .await;
        assert!(p.timed_out);
        assert!(p.done < 100, "{}", p.done);
        assert!(p.ensure_finished().is_err());
    }
}
