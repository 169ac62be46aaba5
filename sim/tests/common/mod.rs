//! Shared by the integration tests: one cache directory for the whole test run (so the Verilator
//! runtime is compiled once), and a nonce for tests that must see a cache miss.

#![allow(dead_code)]

use shiftkit_sim::{BuildOptions, SourceFile};
use std::path::PathBuf;

pub fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shiftkit-sim-cache")
}

pub fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(cache()),
        ..BuildOptions::default()
    }
}

/// A comment unique to this process and call: a design carrying it is never in the cache yet.
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "// nonce {} {t} {}\n",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn src(name: &str, text: &str) -> SourceFile {
    SourceFile {
        name: name.into(),
        text: text.into(),
    }
}

/// A small deterministic generator (no `rand` dependency): SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}
