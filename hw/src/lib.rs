pub mod config;
pub use config::{ArrayConfig, ConfigError, Dataflow, Datapath};
