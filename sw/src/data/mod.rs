//! Data sets the workloads train on.

pub mod batches;
pub mod idx;
pub mod mnist;

pub use batches::{shuffle, Batches};
