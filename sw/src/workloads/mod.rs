//! Training workloads from recent papers, each runnable in every format on every engine.

pub mod classifier;
pub mod clip;
pub mod data_diet;
pub mod distill;
pub mod grokking;
pub mod parallel;
pub mod report;
pub mod stats;
