//! `shiftkit clip embed` and the Hugging Face CLIP vision loader: the fixture against
//! transformers' outputs, a half-precision checkpoint of other sizes against a plain-loop
//! implementation written here, errors in one line, and `golden` against `rtl`.

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::norm::NormKind;
use shiftkit::nn::patch::Images;
use shiftkit::nn::Offload;
use shiftkit::workloads::clip::checkpoint;
use shiftkit::Format;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/clip-vit-tiny")
}

/// The Verilator model cache the co-simulation tests share (one build per design).
fn sim_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shiftkit-sim-cache")
}

fn shiftkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(args)
        .env("SHIFTKIT_SIM_CACHE", sim_cache())
        .output()
        .expect("the binary runs")
}

fn ok(args: &[&str]) {
    let r = shiftkit(args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

fn read(path: &Path) -> (Vec<usize>, Vec<f32>) {
    shiftkit::npy::read_array(path).expect("npy")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn fixture_matches_transformers_within_1e_4() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture();
    let pixels = model.join("pixel_values.npy");
    for (output, reference) in [
        ("pooled", "pooler_output.npy"),
        ("embeds", "image_embeds.npy"),
        ("hidden", "last_hidden_state.npy"),
    ] {
        let out = tmp.path().join(format!("{output}.npy"));
        ok(&[
            "clip",
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--pixels",
            pixels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--output",
            output,
            "--batch",
            "2",
        ]);
        let (shape, got) = read(&out);
        let (want_shape, want) = read(&model.join(reference));
        assert_eq!(shape, want_shape, "{output}");
        let err = max_diff(&got, &want);
        assert!(err <= 1e-4, "{output}: max error {err}");
    }
}

// ---- a half-precision checkpoint of other sizes, and a plain-loop tower to check it ----

struct Sizes {
    d: usize,
    m: usize,
    layers: usize,
    heads: usize,
    image: usize,
    patch: usize,
    proj: usize,
    eps: f64,
}

type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Random weights of a CLIPModel vision tower (with a text-tower key, `position_ids` and
/// `logit_scale` that the loader must ignore), values rounded to f16.
fn random_checkpoint(s: &Sizes, seed: u64) -> Tensors {
    let mut g = shiftkit::rng::SplitMix64::new(seed);
    let mut t = Tensors::new();
    let mut put = |name: &str, shape: Vec<usize>, std: f64, mean: f64| {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| half::f16::from_f64(mean + std * g.normal()).to_f32())
            .collect();
        t.insert(name.to_string(), (shape, v));
    };
    let (d, m, p) = (s.d, s.m, s.patch);
    let tokens = (s.image / p).pow(2) + 1;
    let e = "vision_model.embeddings";
    put(&format!("{e}.class_embedding"), vec![d], 0.5, 0.0);
    put(
        &format!("{e}.patch_embedding.weight"),
        vec![d, 3, p, p],
        0.1,
        0.0,
    );
    put(
        &format!("{e}.position_embedding.weight"),
        vec![tokens, d],
        0.3,
        0.0,
    );
    for ln in ["vision_model.pre_layrnorm", "vision_model.post_layernorm"] {
        put(&format!("{ln}.weight"), vec![d], 0.2, 1.0);
        put(&format!("{ln}.bias"), vec![d], 0.2, 0.0);
    }
    for l in 0..s.layers {
        let pre = format!("vision_model.encoder.layers.{l}");
        for ln in ["layer_norm1", "layer_norm2"] {
            put(&format!("{pre}.{ln}.weight"), vec![d], 0.2, 1.0);
            put(&format!("{pre}.{ln}.bias"), vec![d], 0.2, 0.0);
        }
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            put(
                &format!("{pre}.self_attn.{proj}.weight"),
                vec![d, d],
                0.3,
                0.0,
            );
            put(&format!("{pre}.self_attn.{proj}.bias"), vec![d], 0.1, 0.0);
        }
        put(&format!("{pre}.mlp.fc1.weight"), vec![m, d], 0.25, 0.0);
        put(&format!("{pre}.mlp.fc1.bias"), vec![m], 0.1, 0.0);
        put(&format!("{pre}.mlp.fc2.weight"), vec![d, m], 0.2, 0.0);
        put(&format!("{pre}.mlp.fc2.bias"), vec![d], 0.1, 0.0);
    }
    put("visual_projection.weight", vec![s.proj, d], 0.3, 0.0);
    put("text_projection.weight", vec![s.proj, 4], 0.3, 0.0);
    put("logit_scale", vec![1], 0.0, 2.6);
    t
}

fn write_checkpoint(dir: &Path, s: &Sizes, t: &Tensors, dtype: Dtype) {
    let config = serde_json::json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": s.proj,
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": s.d,
            "intermediate_size": s.m,
            "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads,
            "image_size": s.image,
            "patch_size": s.patch,
            "hidden_act": "gelu",
            "layer_norm_eps": s.eps,
        },
        "text_config": { "hidden_size": 4 },
    });
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = t
        .iter()
        .map(|(k, (shape, v))| {
            let b = match dtype {
                Dtype::F16 => v
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
                _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            };
            (k.clone(), (shape.clone(), b))
        })
        .collect();
    let tokens = (s.image / s.patch).pow(2) + 1;
    let ids: Vec<u8> = (0..tokens as i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(k, (shape, b))| (k.clone(), TensorView::new(dtype, shape.clone(), b).unwrap()))
        .collect();
    views.push((
        "vision_model.embeddings.position_ids".into(),
        TensorView::new(Dtype::I64, vec![1, tokens], &ids).unwrap(),
    ));
    let file = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
}

/// transformers' CLIPVisionModelWithProjection, one image at a time, in f64 loops.
fn plain_embeds(s: &Sizes, t: &Tensors, pixels: &[f32], n: usize) -> Vec<f32> {
    let w = |k: &str| -> Vec<f64> { t[k].1.iter().map(|&v| f64::from(v)).collect() };
    let (d, p, dh) = (s.d, s.patch, s.d / s.heads);
    let grid = s.image / p;
    let tok = grid * grid + 1;
    let ln = |x: &[f64], name: &str| -> Vec<f64> {
        let (g, b) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - mean) / (var + s.eps).sqrt() * g[i] + b[i])
            .collect()
    };
    // y = W x + b with W stored out x in.
    let lin = |x: &[f64], name: &str, bias: bool| -> Vec<f64> {
        let wt = w(&format!("{name}.weight"));
        let out = wt.len() / x.len();
        (0..out)
            .map(|o| {
                let b = if bias {
                    w(&format!("{name}.bias"))[o]
                } else {
                    0.0
                };
                b + (0..x.len())
                    .map(|i| wt[o * x.len() + i] * x[i])
                    .sum::<f64>()
            })
            .collect()
    };
    let mut result = Vec::new();
    for img in 0..n {
        let px = |c: usize, y: usize, x: usize| {
            f64::from(pixels[((img * 3 + c) * s.image + y) * s.image + x])
        };
        let conv = w("vision_model.embeddings.patch_embedding.weight");
        let pos = w("vision_model.embeddings.position_embedding.weight");
        let cls = w("vision_model.embeddings.class_embedding");
        let mut h: Vec<Vec<f64>> = (0..tok)
            .map(|j| {
                (0..d)
                    .map(|o| {
                        let v = if j == 0 {
                            cls[o]
                        } else {
                            let (gy, gx) = ((j - 1) / grid, (j - 1) % grid);
                            let mut acc = 0.0;
                            for c in 0..3 {
                                for ky in 0..p {
                                    for kx in 0..p {
                                        acc += conv[((o * 3 + c) * p + ky) * p + kx]
                                            * px(c, gy * p + ky, gx * p + kx);
                                    }
                                }
                            }
                            acc
                        };
                        v + pos[j * d + o]
                    })
                    .collect()
            })
            .collect();
        h = h
            .iter()
            .map(|x| ln(x, "vision_model.pre_layrnorm"))
            .collect();
        for l in 0..s.layers {
            let pre = format!("vision_model.encoder.layers.{l}");
            let a: Vec<Vec<f64>> = h
                .iter()
                .map(|x| ln(x, &format!("{pre}.layer_norm1")))
                .collect();
            let proj = |name: &str| -> Vec<Vec<f64>> {
                a.iter()
                    .map(|x| lin(x, &format!("{pre}.self_attn.{name}"), true))
                    .collect()
            };
            let (q, k, v) = (proj("q_proj"), proj("k_proj"), proj("v_proj"));
            let mut ctx = vec![vec![0.0; d]; tok];
            for head in 0..s.heads {
                let r = head * dh..(head + 1) * dh;
                for i in 0..tok {
                    let scores: Vec<f64> = (0..tok)
                        .map(|j| {
                            r.clone().map(|c| q[i][c] * k[j][c]).sum::<f64>() / (dh as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in r.clone() {
                        ctx[i][c] = (0..tok).map(|j| e[j] / z * v[j][c]).sum();
                    }
                }
            }
            for i in 0..tok {
                let o = lin(&ctx[i], &format!("{pre}.self_attn.out_proj"), true);
                h[i].iter_mut().zip(o).for_each(|(x, y)| *x += y);
                let b = ln(&h[i], &format!("{pre}.layer_norm2"));
                let f1: Vec<f64> = lin(&b, &format!("{pre}.mlp.fc1"), true)
                    .iter()
                    .map(|&x| 0.5 * x * (1.0 + libm::erf(x / 2f64.sqrt())))
                    .collect();
                let f2 = lin(&f1, &format!("{pre}.mlp.fc2"), true);
                h[i].iter_mut().zip(f2).for_each(|(x, y)| *x += y);
            }
        }
        let pooled = ln(&h[0], "vision_model.post_layernorm");
        result.extend(
            lin(&pooled, "visual_projection", false)
                .iter()
                .map(|&v| v as f32),
        );
    }
    result
}

fn other_sizes() -> Sizes {
    Sizes {
        d: 24,
        m: 40,
        layers: 3,
        heads: 3,
        image: 12,
        patch: 4,
        proj: 7,
        eps: 1e-6,
    }
}

fn random_pixels(path: &Path, n: usize, c: usize, hw: usize, seed: u64) -> Vec<f32> {
    let mut g = shiftkit::rng::SplitMix64::new(seed);
    let v: Vec<f32> = (0..n * c * hw * hw).map(|_| g.normal() as f32).collect();
    shiftkit::npy::write_array(path, &[n, c, hw, hw], &v).unwrap();
    v
}

#[test]
fn f16_clip_model_of_other_sizes_matches_a_plain_loop_tower() {
    let tmp = tempfile::tempdir().unwrap();
    let s = other_sizes();
    let t = random_checkpoint(&s, 7);
    let dir = tmp.path().join("model");
    write_checkpoint(&dir, &s, &t, Dtype::F16);
    let pixels = tmp.path().join("px.npy");
    let px = random_pixels(&pixels, 3, 3, s.image, 8);
    let out = tmp.path().join("embeds.npy");
    ok(&[
        "clip",
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--pixels",
        pixels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (shape, got) = read(&out);
    assert_eq!(shape, vec![3, s.proj]);
    let want = plain_embeds(&s, &t, &px, 3);
    let err = max_diff(&got, &want);
    assert!(err <= 1e-4, "max error {err}");
    assert!(
        want.iter().any(|v| v.abs() > 0.1),
        "the embeddings are not trivial"
    );
}

#[test]
fn bad_input_fails_in_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sizes = other_sizes();
    let s = &sizes;
    let good = random_checkpoint(s, 9);
    let pixels = tmp.path().join("px.npy");
    random_pixels(&pixels, 2, 3, s.image, 10);
    let case = |name: &str, edit: &dyn Fn(&Path), px: &Path, needle: &str| {
        let dir = tmp.path().join(name);
        write_checkpoint(&dir, s, &good, Dtype::F32);
        edit(&dir);
        let out = tmp.path().join(format!("{name}.npy"));
        let r = shiftkit(&[
            "clip",
            "embed",
            "--model",
            dir.to_str().unwrap(),
            "--pixels",
            px.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{name}: succeeded");
        assert!(err.contains(needle), "{name}: {err:?} lacks {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(!out.exists(), "{name}: wrote an output");
    };
    let rewrite = |f: &dyn Fn(&mut Tensors)| {
        let mut t = good.clone();
        f(&mut t);
        move |dir: &Path| write_checkpoint(dir, s, &t, Dtype::F32)
    };
    let fc1 = "vision_model.encoder.layers.1.mlp.fc1.bias";
    case(
        "missing",
        &rewrite(&|t| {
            t.remove(fc1);
        }),
        &pixels,
        &format!("tensor {fc1} is missing"),
    );
    case(
        "shape",
        &rewrite(&|t| {
            t.insert(fc1.into(), (vec![41], vec![0.0; 41]));
        }),
        &pixels,
        &format!("{fc1} has shape [41]"),
    );
    let set_config = |key: &'static str, value: serde_json::Value| {
        move |dir: &Path| {
            let p = dir.join("config.json");
            let mut c: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            c["vision_config"][key] = value.clone();
            std::fs::write(&p, c.to_string()).unwrap();
        }
    };
    case(
        "config-width",
        &set_config("hidden_size", 30.into()),
        &pixels,
        "the config does not match the weights",
    );
    case(
        "config-depth",
        &set_config("num_hidden_layers", 2.into()),
        &pixels,
        "encoder layer 2",
    );
    case(
        "config-act",
        &set_config("hidden_act", "swish".into()),
        &pixels,
        "hidden_act \"swish\"",
    );
    case(
        "dtype",
        &|dir: &Path| {
            let p = dir.join("model.safetensors");
            let mut t = good.clone();
            t.remove(fc1);
            write_checkpoint(dir, s, &t, Dtype::F32);
            // Append the missing tensor as I32 by rewriting the file with it.
            let bytes = std::fs::read(&p).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let ints = vec![0u8; 4 * s.m];
            let mut views: Vec<(String, TensorView)> = st
                .tensors()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        TensorView::new(v.dtype(), v.shape().to_vec(), v.data()).unwrap(),
                    )
                })
                .collect();
            views.push((
                fc1.into(),
                TensorView::new(Dtype::I32, vec![s.m], &ints).unwrap(),
            ));
            let file = safetensors::serialize(views, None).unwrap();
            std::fs::write(&p, file).unwrap();
        },
        &pixels,
        "has dtype I32: only F32, F16 and BF16",
    );
    case(
        "truncated",
        &|dir: &Path| {
            let p = dir.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() - 100]).unwrap();
        },
        &pixels,
        "truncated or corrupt",
    );
    case(
        "corrupt",
        &|dir: &Path| {
            let p = dir.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            b[8] = b'!';
            std::fs::write(&p, b).unwrap();
        },
        &pixels,
        "not a valid safetensors file",
    );
    case(
        "no-weights",
        &|dir: &Path| std::fs::remove_file(dir.join("model.safetensors")).unwrap(),
        &pixels,
        "model.safetensors: cannot read",
    );
    let wrong = tmp.path().join("wrong.npy");
    random_pixels(&wrong, 2, 3, s.image + 4, 11);
    case(
        "pixels-size",
        &|_: &Path| {},
        &wrong,
        "dimension 2 (height) is 16, the model takes 12",
    );
    let flat = tmp.path().join("flat.npy");
    shiftkit::npy::write_array(&flat, &[2, 432], &vec![0.0; 864]).unwrap();
    case(
        "pixels-dims",
        &|_: &Path| {},
        &flat,
        "expected N x 3 x 12 x 12 (4-D)",
    );
    // A vision model without projection has no `embeds`.
    case(
        "no-projection",
        &|dir: &Path| {
            let mut t = good.clone();
            t.remove("visual_projection.weight");
            write_checkpoint(dir, s, &t, Dtype::F32);
            let p = dir.join("config.json");
            let mut c: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            c["architectures"] = serde_json::json!(["CLIPVisionModel"]);
            std::fs::write(&p, c.to_string()).unwrap();
        },
        &pixels,
        "use --output pooled or hidden",
    );
}

#[test]
fn loader_keeps_every_parameter_and_maps_the_patch_convolution() {
    // The fixture through the library on the host: every LayerNorm is perturbed in the fixture,
    // so a loader that skipped one would miss the reference; here also the pooled output of a
    // batch of one equals that image's row of a batch of three.
    let tower = checkpoint::load(&fixture(), NormKind::Layer).unwrap();
    let (shape, px) = read(&fixture().join("pixel_values.npy"));
    let mut ctx = Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap();
    let all = Images {
        data: &px,
        n: shape[0],
        channels: 3,
        height: 32,
        width: 32,
    };
    let one = Images {
        data: &px[3 * 32 * 32..2 * 3 * 32 * 32],
        n: 1,
        ..all
    };
    let a = tower.forward(&mut ctx, &all).unwrap();
    let b = tower.forward(&mut ctx, &one).unwrap();
    assert!(max_diff(a.pooled.row(1), b.pooled.row(0)) < 1e-6);
    assert_eq!(tower.config.projection, Some(16));
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn golden_and_rtl_give_identical_embeds_in_sq6_with_either_norm() {
    // The sq6 3x2 E=3 17-bit design the co-simulation tests build.
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture();
    let pixels = model.join("pixel_values.npy");
    let run = |engine: &str, norm: &str| {
        let out = tmp.path().join(format!("{engine}-{norm}.npy"));
        let report = tmp.path().join(format!("{engine}-{norm}.json"));
        ok(&[
            "clip",
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--pixels",
            pixels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "sq6",
            "--engine",
            engine,
            "--norm",
            norm,
            "--rows",
            "3",
            "--cols",
            "2",
            "--window",
            "3",
            "--acc-bits",
            "17",
            "--json",
            report.to_str().unwrap(),
        ]);
        (std::fs::read(&out).unwrap(), json(&report))
    };
    for norm in ["layer", "l1"] {
        let (g, gj) = run("golden", norm);
        let (r, rj) = run("rtl", norm);
        assert_eq!(g, r, "--norm {norm}: rtl embeds differ from golden");
        assert_eq!(gj["counters"], rj["counters"], "--norm {norm}");
        assert_eq!(
            gj["l1norm_counters"], rj["l1norm_counters"],
            "--norm {norm}"
        );
        assert_eq!(gj["vs_fp32"], rj["vs_fp32"]);
        let l1_cycles = gj["l1norm_counters"]["cycles"].as_u64().unwrap();
        // 2 layers x 2 norms x 51 tokens + pre (51) + post (3) rows went through the unit.
        assert_eq!(l1_cycles > 0, norm == "l1", "{gj}");
        assert!(gj["counters"]["cycles"].as_u64().unwrap() > l1_cycles);
        let cos = gj["vs_fp32"]["cosine_mean"].as_f64().unwrap();
        assert!(
            cos > 0.5 && cos <= 1.0 + 1e-9,
            "--norm {norm}: cosine {cos}"
        );
    }
}

#[test]
fn vit_b_width_rows_go_through_the_l1_norm_unit_with_rtl_equal_to_golden() {
    // ViT-B's hidden size (768 features per row, more than the 256 the unit first took) in a
    // one-layer tower on the co-simulation tests' sq6 3x2 design: every LayerNorm row on the unit.
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("d768");
    let m = model.to_str().unwrap();
    ok(&[
        "clip",
        "init",
        "--out",
        m,
        "--hidden",
        "768",
        "--intermediate",
        "32",
        "--layers",
        "1",
        "--heads",
        "12",
        "--image",
        "32",
        "--patch",
        "16",
        "--projection",
        "8",
        "--images",
        "1",
    ]);
    let run = |engine: &str| {
        let out = tmp.path().join(format!("{engine}.npy"));
        let report = tmp.path().join(format!("{engine}.json"));
        let pixels = model.join("pixel_values.npy");
        ok(&[
            "clip",
            "embed",
            "--model",
            m,
            "--pixels",
            pixels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--format",
            "sq6",
            "--engine",
            engine,
            "--norm",
            "l1",
            "--rows",
            "3",
            "--cols",
            "2",
            "--window",
            "3",
            "--acc-bits",
            "17",
            "--json",
            report.to_str().unwrap(),
        ]);
        (std::fs::read(&out).unwrap(), json(&report))
    };
    let (g, gj) = run("golden");
    let (r, rj) = run("rtl");
    assert_eq!(g, r, "rtl embeds differ from golden");
    assert_eq!(gj["counters"], rj["counters"]);
    assert_eq!(gj["l1norm_counters"], rj["l1norm_counters"]);
    // pre (5 tokens) + 2 norms x 5 tokens + post (1) rows of 768 elements, each at least n
    // cycles through the unit's stage III.
    let l1_cycles = gj["l1norm_counters"]["cycles"].as_u64().unwrap();
    assert!(l1_cycles >= 16 * 768, "{gj}");
    let cos = gj["vs_fp32"]["cosine_mean"].as_f64().unwrap();
    assert!(cos > 0.5 && cos <= 1.0 + 1e-9, "cosine {cos}");
}

#[test]
fn ln_tuning_steps_on_rtl_equal_golden_bit_for_bit() {
    // The co-simulation tests' sq6 3x2 E=3 17-bit design (cached), three LN-tuning steps of
    // the detector (CE on slerp-augmented features + uniformity + alignment, AdamW on the
    // LayerNorms and the head) with a tiny one-layer tower on real and manipulated digits:
    // every GEMM of the tower's forward and backward and of the head goes through the array.
    use shiftkit::data::manipulate::{self, Kind};
    use shiftkit::data::mnist::shipped_test_set;
    use shiftkit::nn::activation::Activation;
    use shiftkit::nn::vit::{VisionTower, VitConfig};
    use shiftkit::workloads::clip::detect::{Detector, SphereWeights, Tune};
    use shiftkit::workloads::clip::model::normalize_pixels;
    std::env::set_var("SHIFTKIT_SIM_CACHE", sim_cache());
    let shape = ArrayShape {
        rows: 3,
        cols: 2,
        acc_bits: Some(17),
    };
    let data = shipped_test_set().expect("shipped MNIST");
    let (mut raw, mut labels) = (Vec::new(), Vec::new());
    for i in 0..6 {
        raw.extend_from_slice(data.image(i));
        labels.push(0);
        let kind = [Kind::Splice, Kind::Blur, Kind::Warp][i % 3];
        raw.extend(
            manipulate::apply(kind, data.image(i), data.image(i + 7), (28, 28), i as u64).unwrap(),
        );
        labels.push(1);
    }
    let pixels = normalize_pixels(&raw);
    let config = VitConfig {
        hidden: 16,
        intermediate: 32,
        layers: 1,
        heads: 2,
        channels: 1,
        image: 28,
        patch: 14,
        projection: None,
        act: Activation::QuickGelu,
        eps: 1e-5,
    };
    let weights = SphereWeights {
        uniformity: 0.5,
        alignment: 0.1,
        slerp: 0.5,
    };
    let bits = |ps: Vec<&mut shiftkit::nn::Param>| -> Vec<(String, Vec<u32>)> {
        ps.iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.value.data.iter().map(|v| v.to_bits()).collect(),
                )
            })
            .collect()
    };
    let run = |kind: EngineKind| {
        let mut ctx = Offload::new(Format::Sq6, kind, shape, 3, 5).expect("engine");
        let tower = VisionTower::random(config.clone(), NormKind::Layer, 3, true);
        let mut det = Detector::new(tower, Tune::Ln, weights, 1, 0.0);
        let before = bits(det.trainable());
        let mut losses = Vec::new();
        for step in 0..3 {
            let ids: Vec<usize> = (0..4).map(|j| (4 * step + j) % 12).collect();
            let img: Vec<f32> = ids
                .iter()
                .flat_map(|&i| pixels[i * 784..(i + 1) * 784].iter().copied())
                .collect();
            let l: Vec<usize> = ids.iter().map(|&i| labels[i]).collect();
            let loss = det.step(&mut ctx, &img, &l, 2e-2, 2e-2).expect("step");
            losses.push([loss.ce, loss.uniformity, loss.alignment].map(f64::to_bits));
        }
        let trained = bits(det.trainable());
        let frozen = bits(det.tower.params_mut());
        (losses, before, trained, frozen, *ctx.counters())
    };
    let (golden, rtl) = (run(EngineKind::Golden), run(EngineKind::Rtl));
    assert_eq!(golden.0, rtl.0, "losses");
    assert!(golden.2 == rtl.2, "trainable weights differ");
    assert!(golden.3 == rtl.3, "tower weights differ");
    assert_eq!(golden.4, rtl.4, "counters");
    // LN-tuning trains the 3 LayerNorms' and the head's parameters, and only those.
    let names: Vec<&str> = golden.2.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2 * 4 + 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.contains("norm") || n.starts_with("head.")),
        "{names:?}"
    );
    for (a, b) in golden.1.iter().zip(&golden.2) {
        assert_ne!(a.1, b.1, "{} did not move", a.0);
    }
    let untouched = VisionTower::random(config.clone(), NormKind::Layer, 3, true);
    let mut untouched = untouched;
    for ((name, after), p) in golden.3.iter().zip(untouched.params_mut()) {
        let trained = names.contains(&name.as_str());
        let same = *after == p.value.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            same, !trained,
            "{name}: trained {trained}, unchanged {same}"
        );
    }
    // Forward (tower + head) and backward (input and weight gradients, the head's too).
    assert!(golden.4.gemms > 3 * 10, "{:?}", golden.4);
    assert!(golden.0.iter().all(|l| f64::from_bits(l[0]).is_finite()));
}
