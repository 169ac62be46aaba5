//! Training workloads from recent papers, each runnable in every format on every engine.

pub mod data_diet;
pub mod grokking;
pub mod report;
