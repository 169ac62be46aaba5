//! Finite-difference checks (fp32, `cpu` engine) of the backward passes of the Transformer
//! layers, the attention block and a whole small vision tower.

use super::activation::Activation;
use super::attention::MultiHeadAttention;
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::norm::{Norm, NormKind};
use super::patch::Images;
use super::softmax::{softmax, softmax_backward};
use super::vit::{VisionTower, VitConfig};
use super::{Offload, Param};
use crate::engine::{ArrayShape, EngineKind};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::rng::SplitMix64;

fn cpu() -> Offload {
    Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap()
}

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut g = SplitMix64::new(seed);
    Matrix::from_fn(rows, cols, |_, _| g.normal() as f32)
}

/// L = sum(w * y) in f64, and dL/dy = w.
fn weighted(y: &Matrix, w: &Matrix) -> f64 {
    y.data
        .iter()
        .zip(&w.data)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Compare the gradients accumulated in `params(model)` with central differences of `loss` on
/// about `samples` entries of each parameter.
fn check<M>(
    model: &mut M,
    params: impl Fn(&mut M) -> Vec<&mut Param>,
    loss: impl Fn(&M) -> f64,
    samples: usize,
) {
    let grads: Vec<(String, Vec<f32>)> = params(model)
        .iter()
        .map(|p| (p.name.clone(), p.grad.data.clone()))
        .collect();
    let h = 3e-3f32;
    for (pi, (name, grad)) in grads.iter().enumerate() {
        let n = grad.len();
        for idx in (0..n).step_by((n / samples).max(1)) {
            let orig = params(model)[pi].value.data[idx];
            params(model)[pi].value.data[idx] = orig + h;
            let up = loss(model);
            params(model)[pi].value.data[idx] = orig - h;
            let down = loss(model);
            params(model)[pi].value.data[idx] = orig;
            let fd = (up - down) / (2.0 * f64::from(h));
            let g = f64::from(grad[idx]);
            assert!(
                (fd - g).abs() <= 2e-3 + 0.03 * fd.abs().max(g.abs()),
                "{name}[{idx}]: backward {g} vs finite difference {fd}"
            );
        }
    }
}

fn linear(name: &str, din: usize, dout: usize, seed: u64) -> Linear {
    let s = 1.0 / (din as f32).sqrt();
    let mut w = random(din, dout, seed);
    w.data.iter_mut().for_each(|v| *v *= s);
    Linear::new(
        Param::new(&format!("{name}.weight"), w),
        Some(Param::new(
            &format!("{name}.bias"),
            random(1, dout, seed + 1),
        )),
    )
}

/// A layer under test and its input as a parameter, so dL/dx is checked too.
struct WithInput<L> {
    layer: L,
    x: Param,
}

#[test]
fn layer_norm_gradients() {
    let mut m = WithInput {
        layer: LayerNorm::new("ln", 7, 1e-5),
        x: Param::new("x", random(5, 7, 1)),
    };
    m.layer.gamma.value = random(1, 7, 2);
    m.layer.beta.value = random(1, 7, 3);
    let w = random(5, 7, 4);
    let (_, cache) = m.layer.forward(&m.x.value);
    m.x.grad = m.layer.backward(&w, &cache);
    check(
        &mut m,
        |m| vec![&mut m.x, &mut m.layer.gamma, &mut m.layer.beta],
        |m| weighted(&m.layer.forward(&m.x.value).0, &w),
        35,
    );
}

#[test]
fn l1_norm_layer_gradients_on_the_host() {
    let mut ctx = cpu();
    let mut m = WithInput {
        layer: Norm::with_params(
            NormKind::L1,
            Param::new("g", random(1, 9, 12)),
            Param::new("b", random(1, 9, 13)),
            1e-5,
        ),
        x: Param::new("x", random(4, 9, 11)),
    };
    let w = random(4, 9, 14);
    let (_, cache) = m.layer.forward(&mut ctx, &m.x.value).unwrap();
    m.x.grad = m.layer.backward(&w, &cache).unwrap();
    check(
        &mut m,
        |m| {
            let mut v = vec![&mut m.x];
            v.extend(m.layer.params_mut());
            v
        },
        |m| weighted(&m.layer.forward(&mut cpu(), &m.x.value).unwrap().0, &w),
        36,
    );
}

#[test]
fn softmax_gradients() {
    let mut m = WithInput {
        layer: (),
        x: Param::new("x", random(3, 6, 21)),
    };
    let w = random(3, 6, 22);
    let y = softmax(&m.x.value);
    m.x.grad = softmax_backward(&y, &w);
    check(
        &mut m,
        |m| vec![&mut m.x],
        |m| weighted(&softmax(&m.x.value), &w),
        18,
    );
}

fn attention(causal: bool) -> MultiHeadAttention {
    MultiHeadAttention::new(
        linear("q", 8, 8, 31),
        linear("k", 8, 8, 33),
        linear("v", 8, 8, 35),
        linear("o", 8, 8, 37),
        2,
        causal,
    )
}

fn check_attention(causal: bool) {
    // Two sequences of three tokens, width 8, two heads of 4.
    let mut m = WithInput {
        layer: attention(causal),
        x: Param::new("x", random(6, 8, 39)),
    };
    let w = random(6, 8, 40);
    let mut ctx = cpu();
    let (_, cache) = m.layer.forward(&mut ctx, &m.x.value, 3).unwrap();
    m.x.grad = m.layer.backward(&mut ctx, &w, &cache).unwrap();
    check(
        &mut m,
        |m| {
            let mut v = vec![&mut m.x];
            v.extend(m.layer.params_mut());
            v
        },
        |m| weighted(&m.layer.forward(&mut cpu(), &m.x.value, 3).unwrap().0, &w),
        12,
    );
}

#[test]
fn attention_block_gradients() {
    check_attention(false);
}

#[test]
fn causal_attention_block_gradients_and_mask() {
    check_attention(true);
    // Token 0 of a causal block sees only itself: changing token 2 leaves its output alone.
    let a = attention(true);
    let x = random(3, 8, 41);
    let mut x2 = x.clone();
    x2.data[2 * 8..].iter_mut().for_each(|v| *v += 1.0);
    let y = a.forward(&mut cpu(), &x, 3).unwrap().0;
    let y2 = a.forward(&mut cpu(), &x2, 3).unwrap().0;
    assert_eq!(y.row(0), y2.row(0));
    assert_eq!(y.row(1), y2.row(1));
    assert_ne!(y.row(2), y2.row(2));
}

fn small_config() -> VitConfig {
    VitConfig {
        hidden: 8,
        intermediate: 12,
        layers: 2,
        heads: 2,
        channels: 3,
        image: 8,
        patch: 4,
        projection: Some(5),
        act: Activation::GeluErf,
        eps: 1e-5,
    }
}

fn check_tower(norm: NormKind) {
    let cfg = small_config();
    let mut tower = VisionTower::random(cfg, norm, 51, true);
    let mut g = SplitMix64::new(52);
    let pixels: Vec<f32> = (0..2 * 3 * 8 * 8).map(|_| g.normal() as f32).collect();
    let img = Images {
        data: &pixels,
        n: 2,
        channels: 3,
        height: 8,
        width: 8,
    };
    let w = random(2, 5, 53);
    let mut ctx = cpu();
    let (out, cache) = tower.forward_train(&mut ctx, &img).unwrap();
    assert_eq!(
        (
            out.hidden.rows,
            out.pooled.rows,
            out.embeds.as_ref().unwrap().cols
        ),
        (2 * 5, 2, 5)
    );
    tower.backward(&mut ctx, &w, &cache).unwrap();
    check(
        &mut tower,
        |t| t.params_mut(),
        |t| {
            weighted(
                t.forward(&mut cpu(), &img)
                    .unwrap()
                    .embeds
                    .as_ref()
                    .unwrap(),
                &w,
            )
        },
        4,
    );
}

#[test]
fn vision_tower_gradients_end_to_end() {
    check_tower(NormKind::Layer);
}

#[test]
fn vision_tower_with_l1_norms_gradients_end_to_end() {
    check_tower(NormKind::L1);
}

#[test]
fn kd_gradient() {
    use super::loss::kd_kl;
    let mut m = WithInput {
        layer: (),
        x: Param::new("student logits", random(4, 10, 61)),
    };
    let mut t = random(4, 10, 62);
    t.data.iter_mut().for_each(|v| *v *= 3.0);
    let out = kd_kl(&m.x.value, &t, 4.0, 0.7);
    assert!(out.loss > 0.0);
    m.x.grad = out.grad;
    check(
        &mut m,
        |m| vec![&mut m.x],
        |m| kd_kl(&m.x.value, &t, 4.0, 0.7).loss,
        40,
    );
    // Zero when the student equals the teacher.
    assert!(kd_kl(&t, &t, 4.0, 1.0).loss.abs() < 1e-12);
}

#[test]
fn nd_gradient_in_both_regimes() {
    use super::loss::nd;
    let centers = random(3, 6, 71);
    let labels = [0usize, 2, 1, 2];
    // Student rows scaled 0.2x and 5x against the teacher's: max(||s||, ||t||) is the teacher's
    // norm for the first two and the student's for the other two.
    let mut s = random(4, 6, 72);
    let t = random(4, 6, 73);
    for (r, f) in [(0, 0.2f32), (1, 0.2), (2, 5.0), (3, 5.0)] {
        s.data[r * 6..(r + 1) * 6].iter_mut().for_each(|v| *v *= f);
    }
    let mut m = WithInput {
        layer: (),
        x: Param::new("s", s),
    };
    let out = nd(&m.x.value, &t, &centers, &labels, 1.5);
    m.x.grad = out.grad;
    check(
        &mut m,
        |m| vec![&mut m.x],
        |m| nd(&m.x.value, &t, &centers, &labels, 1.5).loss,
        24,
    );
    // Zero when every embedding is its class mean's direction at least the teacher's norm.
    let mut aligned = Matrix::zeros(4, 6);
    for (r, &y) in labels.iter().enumerate() {
        let c = centers.row(y);
        let n: f32 = c.iter().map(|v| v * v).sum::<f32>().sqrt();
        aligned.data[r * 6..(r + 1) * 6]
            .iter_mut()
            .zip(c)
            .for_each(|(a, v)| *a = v / n * 100.0);
    }
    assert!(nd(&aligned, &t, &centers, &labels, 1.0).loss.abs() < 1e-6);
}

#[test]
fn batch_norm_train_mode_gradients() {
    use super::batch_norm::BatchNorm1d;
    let mut m = WithInput {
        layer: BatchNorm1d::new("bn", 5),
        x: Param::new("x", random(6, 5, 81)),
    };
    m.layer.gamma.value = random(1, 5, 82);
    m.layer.beta.value = random(1, 5, 83);
    let w = random(6, 5, 84);
    let (_, cache) = m.layer.forward_train(&m.x.value).unwrap();
    m.x.grad = m.layer.backward(&w, &cache);
    check(
        &mut m,
        |m| vec![&mut m.x, &mut m.layer.gamma, &mut m.layer.beta],
        // A fresh layer with these parameters: the running statistics do not enter training mode.
        |m| {
            let mut bn = BatchNorm1d::new("bn", 5);
            bn.gamma.value = m.layer.gamma.value.clone();
            bn.beta.value = m.layer.beta.value.clone();
            weighted(&bn.forward_train(&m.x.value).unwrap().0, &w)
        },
        30,
    );
}

#[test]
fn projection_under_nd_gradients() {
    // ND on BN -> dropout -> linear of x: the whole chain, one fixed dropout mask (the same seed
    // and call number on every evaluation).
    use super::loss::nd;
    use super::projection::Projection;
    let centers = random(2, 4, 91);
    let t = random(5, 4, 92);
    let labels = [0usize, 1, 1, 0, 1];
    let fresh = || Projection::new("proj", 3, 4, 0.3, 93);
    let mut m = WithInput {
        layer: fresh(),
        x: Param::new("x", random(5, 3, 94)),
    };
    let mut ctx = cpu();
    let (y, cache) = m.layer.forward_train(&mut ctx, &m.x.value).unwrap();
    let out = nd(&y, &t, &centers, &labels, 2.0);
    m.x.grad = m.layer.backward(&mut ctx, &out.grad, &cache).unwrap();
    check(
        &mut m,
        |m| {
            let mut v = vec![&mut m.x];
            v.extend(m.layer.params_mut());
            v
        },
        |m| {
            let mut p = fresh();
            p.bn.gamma.value = m.layer.bn.gamma.value.clone();
            p.bn.beta.value = m.layer.bn.beta.value.clone();
            p.linear = Linear::new(m.layer.linear.weight.clone(), m.layer.linear.bias.clone());
            let y = p.forward_train(&mut cpu(), &m.x.value).unwrap().0;
            nd(&y, &t, &centers, &labels, 2.0).loss
        },
        20,
    );
}

fn small_text_config() -> super::text::TextConfig {
    super::text::TextConfig {
        vocab: 7,
        hidden: 8,
        intermediate: 12,
        layers: 2,
        heads: 2,
        context: 6,
        projection: Some(5),
        act: Activation::QuickGelu,
        eps: 1e-5,
        eos_token_id: 3,
    }
}

/// A text tower whose embeddings are scaled to about unit size: at the initial 0.02 / 0.01
/// the first LayerNorm magnifies a finite-difference step of 3e-3 beyond its linear range.
fn text_tower(seed: u64) -> super::text::TextTower {
    let mut t = super::text::TextTower::random(small_text_config(), NormKind::Layer, seed);
    t.token.table.value.data.iter_mut().for_each(|v| *v *= 40.0);
    t.position.value.data.iter_mut().for_each(|v| *v *= 60.0);
    t
}

/// Sequences of 5 tokens with the EOS (id 3) at different places, padding (0) after it.
fn text_batch() -> Vec<Vec<usize>> {
    vec![
        vec![1, 4, 5, 3, 0],
        vec![1, 6, 3, 0, 0],
        vec![1, 5, 4, 6, 3],
    ]
}

#[test]
fn text_tower_gradients_end_to_end_and_causal_pooling() {
    let mut tower = text_tower(61);
    let seqs = text_batch();
    let w = random(3, 5, 62);
    let mut ctx = cpu();
    let (out, cache) = tower.forward_train(&mut ctx, &seqs).unwrap();
    tower.backward(&mut ctx, &w, &cache).unwrap();
    check(
        &mut tower,
        |t| t.params_mut(),
        |t| {
            weighted(
                t.forward(&mut cpu(), &seqs)
                    .unwrap()
                    .embeds
                    .as_ref()
                    .unwrap(),
                &w,
            )
        },
        4,
    );
    // Tokens after the EOS do not change the pooled output (causal mask); tokens before do.
    let mut other = seqs.clone();
    other[1][3] = 5;
    let y = tower.forward(&mut cpu(), &other).unwrap().pooled;
    assert_eq!(y.row(1), out.pooled.row(1));
    other[1][1] = 4;
    let y = tower.forward(&mut cpu(), &other).unwrap().pooled;
    assert_ne!(y.row(1), out.pooled.row(1));
    // Bad input: a sequence without EOS, an id outside the vocabulary.
    assert!(tower.forward(&mut cpu(), &[vec![1, 4, 5]]).is_err());
    assert!(tower.forward(&mut cpu(), &[vec![1, 9, 3]]).is_err());
}

/// The contrastive loss through both towers: every parameter's gradient and logit_scale's.
#[test]
fn contrastive_loss_through_both_towers_gradients() {
    use super::contrastive::clip_contrastive;
    use super::text::TextTower;
    let mut text = text_tower(71);
    let mut vision = VisionTower::random(small_config(), NormKind::Layer, 72, true);
    let seqs = text_batch();
    let mut g = SplitMix64::new(73);
    let pixels: Vec<f32> = (0..3 * 3 * 8 * 8).map(|_| g.normal() as f32).collect();
    let img = Images {
        data: &pixels,
        n: 3,
        channels: 3,
        height: 8,
        width: 8,
    };
    let scale = 0.7f32;
    let mut ctx = cpu();
    let (vo, vc) = vision.forward_train(&mut ctx, &img).unwrap();
    let (to, tc) = text.forward_train(&mut ctx, &seqs).unwrap();
    let out = clip_contrastive(
        &mut ctx,
        vo.embeds.as_ref().unwrap(),
        to.embeds.as_ref().unwrap(),
        scale,
    )
    .unwrap();
    vision.backward(&mut ctx, &out.dimage, &vc).unwrap();
    text.backward(&mut ctx, &out.dtext, &tc).unwrap();
    let loss = |v: &VisionTower, t: &TextTower, s: f32| {
        let mut c = cpu();
        let a = v.forward(&mut c, &img).unwrap().embeds.unwrap();
        let b = t.forward(&mut c, &seqs).unwrap().embeds.unwrap();
        clip_contrastive(&mut c, &a, &b, s).unwrap().loss
    };
    let mut pair = (vision, text);
    check(
        &mut pair,
        |p| {
            let mut v = p.0.params_mut();
            v.extend(p.1.params_mut());
            v
        },
        |p| loss(&p.0, &p.1, scale),
        3,
    );
    let h = 1e-3f32;
    let fd = (loss(&pair.0, &pair.1, scale + h) - loss(&pair.0, &pair.1, scale - h))
        / (2.0 * f64::from(h));
    assert!(
        (fd - out.dlogit_scale).abs() < 1e-3,
        "{} vs {fd}",
        out.dlogit_scale
    );
}
