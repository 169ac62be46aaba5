//! CLIP's contrastive objective over a batch of paired image and text embeddings: both sides
//! L2-normalized (host), their cosine similarities as one GEMM through `Offload`, the symmetric
//! InfoNCE loss with a learned temperature (host, `loss::symmetric_infonce`), and the two
//! backward GEMMs.
//!
//! Roles (`nn/offload.rs`): the similarities `C = A B^T` take the `Forward` role (A per-K =
//! per embedding feature, B^T per-N = per caption, as the attention scores Q K^T); both input
//! gradients `dA = dC B` and `dB = dC^T A` take the `InputGrad` role (dC per-K, stochastic: per
//! caption and per image respectively; the normalized embeddings per-N = per feature).

use super::loss::{l2_normalize_backward, l2_normalize_rows, symmetric_infonce};
use super::{GemmKind, Offload};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

pub struct ContrastiveOut {
    pub loss: f64,
    /// dL/d(image embeddings), dL/d(text embeddings), before normalization.
    pub dimage: Matrix,
    pub dtext: Matrix,
    pub dlogit_scale: f64,
    pub image_to_text_accuracy: f64,
    pub text_to_image_accuracy: f64,
}

/// The loss and its gradients for N image embeddings against their N captions' embeddings.
pub fn clip_contrastive(
    ctx: &mut Offload,
    image: &Matrix,
    text: &Matrix,
    logit_scale: f32,
) -> Result<ContrastiveOut> {
    if image.rows != text.rows || image.cols != text.cols || image.rows == 0 {
        return Err(Error::Shape(format!(
            "{} x {} image embeddings against {} x {} text embeddings: the contrastive loss \
             takes N >= 1 pairs of one width",
            image.rows, image.cols, text.rows, text.cols
        )));
    }
    let (a, ia) = l2_normalize_rows(image);
    let (b, ib) = l2_normalize_rows(text);
    let cos = ctx.gemm(&a, &b.transpose(), GemmKind::Forward)?;
    let out = symmetric_infonce(&cos, logit_scale);
    let da = ctx.gemm(&out.dcos, &b, GemmKind::InputGrad)?;
    let db = ctx.gemm(&out.dcos.transpose(), &a, GemmKind::InputGrad)?;
    Ok(ContrastiveOut {
        loss: out.loss,
        dimage: l2_normalize_backward(&a, &ia, &da),
        dtext: l2_normalize_backward(&b, &ib, &db),
        dlogit_scale: out.dlogit_scale,
        image_to_text_accuracy: out.image_to_text_accuracy,
        text_to_image_accuracy: out.text_to_image_accuracy,
    })
}

/// Cosine similarities of every row of `a` with every row of `b` (a `Forward` GEMM).
pub fn cosine_matrix(ctx: &mut Offload, a: &Matrix, b: &Matrix) -> Result<Matrix> {
    let (an, _) = l2_normalize_rows(a);
    let (bn, _) = l2_normalize_rows(b);
    ctx.gemm(&an, &bn.transpose(), GemmKind::Forward)
}
