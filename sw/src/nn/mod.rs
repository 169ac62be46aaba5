//! Training runtime: layers with explicit forward and backward passes whose every GEMM (forward,
//! input gradient, weight gradient) is offloaded to an engine through `Offload`. Master weights,
//! element-wise layers, losses and the optimizer stay on the host in f32.

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod cnn;
pub mod contrastive;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod encoder;
pub mod grad_norms;
#[cfg(test)]
mod gradcheck;
pub mod layer_norm;
pub mod linear;
pub mod loss;
pub mod nchw;
pub mod norm;
pub mod offload;
pub mod optim;
pub mod param;
pub mod patch;
pub mod pool;
pub mod projection;
pub mod residual;
pub mod softmax;
pub mod text;
pub mod vit;

pub use offload::{GemmKind, Offload};
pub use param::Param;
