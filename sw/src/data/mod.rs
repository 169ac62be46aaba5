//! Data sets the workloads train on.

pub mod mnist;
