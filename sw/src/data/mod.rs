//! Data sets the workloads train on.

pub mod batches;
pub mod idx;
pub mod manipulate;
pub mod mnist;
pub mod subset;

pub use batches::{shuffle, Batches};
