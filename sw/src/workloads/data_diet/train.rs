//! The two data-diet scores (EL2N, GraNd); the training loop is `workloads::classifier`.

use crate::data::mnist::Mnist;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::nn::cnn::{batch_of, Cnn, CLASSES};
use crate::nn::Offload;
pub use crate::workloads::classifier::{
    evaluate, labels_of, predict, train, train_step, Hyper, RunSpec,
};

/// EL2N: || softmax(f(x)) - onehot(y) ||_2 per example (eval mode, unaugmented images).
pub fn el2n(model: &mut Cnn, ctx: &mut Offload, set: &Mnist, batch: usize) -> Result<Vec<f64>> {
    let logits = predict(model, ctx, set, batch)?;
    Ok((0..set.len())
        .map(|i| {
            let p = softmax(logits.row(i));
            let y = set.labels[i] as usize;
            p.iter()
                .enumerate()
                .map(|(j, &pj)| (pj - (j == y) as u8 as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect())
}

/// GraNd: || grad_theta CE(f(x), y) ||_2 over all parameters, exact, per example.
pub fn grand(model: &mut Cnn, ctx: &mut Offload, set: &Mnist, batch: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(set.len());
    let ids: Vec<usize> = (0..set.len()).collect();
    for chunk in ids.chunks(batch.max(1)) {
        let logits = model.forward(ctx, &batch_of(set, chunk), true)?;
        let mut g = Matrix::zeros(chunk.len(), CLASSES);
        for (r, &i) in chunk.iter().enumerate() {
            let p = softmax(logits.row(r));
            let y = set.labels[i] as usize;
            for (j, pj) in p.iter().enumerate() {
                g.data[r * CLASSES + j] = (pj - (j == y) as u8 as f64) as f32;
            }
        }
        out.extend(
            model
                .per_example_sq_grad_norms(ctx, &g)?
                .into_iter()
                .map(f64::sqrt),
        );
    }
    Ok(out)
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}
