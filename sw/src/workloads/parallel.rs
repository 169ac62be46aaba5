//! Independent runs of an experiment (retrainings, scoring runs) side by side.
//!
//! A training run of the small models here keeps about one core busy (its GEMMs are too small
//! to split well), so an experiment of many runs goes faster with runs in parallel than with
//! each run on every core. Each run is deterministic on its own (its seed fixes its init, data
//! order and rounding), so the results do not depend on `jobs`.

use crate::error::Result;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The default number of runs in parallel: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `f(0), .., f(n - 1)` on up to `jobs` threads, taken in index order; the results in index
/// order. After a failure no further item starts, and the failure with the lowest index is
/// returned (so the error does not depend on timing among the items that ran).
pub fn run_indexed<T: Send>(
    n: usize,
    jobs: usize,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let jobs = jobs.clamp(1, n.max(1));
    if jobs == 1 {
        return (0..n).map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let r = f(i);
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(n);
    for r in slots {
        match r {
            Some(r) => out.push(r?),
            // Not started because an earlier-taken item failed: that failure is in a lower
            // slot and was returned above.
            None => unreachable!("items start in index order, and only stop after a failure"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn results_come_in_index_order_whatever_the_jobs() {
        for jobs in [1, 2, 3, 8] {
            let r = run_indexed(10, jobs, |i| {
                std::thread::sleep(std::time::Duration::from_millis((10 - i as u64) * 2));
                Ok(i * i)
            })
            .unwrap();
            assert_eq!(r, (0..10).map(|i| i * i).collect::<Vec<_>>(), "jobs {jobs}");
        }
        assert!(run_indexed(0, 2, |_| Ok(())).unwrap().is_empty());
    }

    #[test]
    fn the_lowest_failure_is_returned_and_later_items_do_not_start() {
        let started = AtomicUsize::new(0);
        let err = run_indexed(100, 2, |i| {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 3 || i == 4 {
                Err(Error::Usage(format!("item {i}")))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("item 3"), "{err}");
        assert!(started.load(Ordering::SeqCst) < 100);
    }
}
