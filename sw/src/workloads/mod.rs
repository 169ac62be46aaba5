//! Training workloads from recent papers, each runnable in every format on every engine.

pub mod clip;
pub mod data_diet;
pub mod grokking;
pub mod report;
