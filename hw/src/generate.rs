//! Verilog generation: `ArrayConfig` -> one Verilog text (+ `manifest.json` when written out).
//!
//! Operand widths are const generics, so [`generate`] instantiates one Rust type per supported
//! `(b, accumulator container)` pair and picks it at run time; rows, columns, window and the
//! declared `acc_bits` are run-time parameters of that type (see `pe.rs`).
//!
//! Every block is printed through [`crate::verilog`] (structural check, `$` names rewritten to
//! `_`, clashes refused); [`Port`] and [`PortDirection`] are re-exported from there.

use crate::array::SqArray;
use crate::config::{ArrayConfig, Dataflow, Datapath};
use crate::error::HwError;
use crate::pe::{MacCtl, PeParams, CTL_BITS, SHIFT_BITS};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::verilog::{emit, emit_verilog, rename_for_verilog, write_atomically};
pub use crate::verilog::{Port, PortDirection};

/// Accumulator container widths, smallest first; a design uses the smallest that holds
/// `acc_bits`. The bits above `acc_bits` are sign copies that synthesis removes (measured: a
/// 24-bit accumulator costs the same in a 32- or 48-bit container).
pub const ACC_CONTAINERS: [usize; 2] = [32, 48];

/// The accumulator container width for a configuration.
pub fn acc_container(config: &ArrayConfig) -> usize {
    let need = config.acc_bits as usize;
    ACC_CONTAINERS
        .iter()
        .copied()
        .find(|&w| w >= need)
        .unwrap_or(ACC_CONTAINERS[ACC_CONTAINERS.len() - 1])
}

/// A generated design: the top module's name, its Verilog, and what a driver needs to know.
#[derive(Clone, Debug)]
pub struct GeneratedDesign {
    pub top: String,
    pub verilog: String,
    pub config: ArrayConfig,
    pub parameters: DesignParameters,
    pub ports: Vec<Port>,
    /// Accelerator tops only: the command / response interface (`docs/accelerator.md`).
    pub accel: Option<AccelParameters>,
}

/// Parameters recorded in `manifest.json` (everything a driver of the array needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignParameters {
    pub rows: usize,
    pub cols: usize,
    /// `sq4`, `sq6`, `sq8`.
    pub datapath: String,
    pub bits: u32,
    pub window: u32,
    /// Declared accumulator width: sums wrap at this width.
    pub acc_bits: u32,
    /// Width of each `drain_out_<j>` port: the accumulator sign-extended from `acc_bits`.
    pub acc_port_bits: usize,
    pub dataflow: Dataflow,
    /// `ctl_in` layout, LSB first: bit 0 valid, bit 1 flush, bits 2.. the per-K shift.
    pub ctl_bits: usize,
    pub ctl_valid_bit: usize,
    pub ctl_flush_bit: usize,
    pub ctl_shift_lsb: usize,
    pub ctl_shift_bits: usize,
    /// Largest per-K shift the design supports (`2E`).
    pub max_shift: u32,
    /// Minimum number of cycles between two flushes (`2 * rows - 1`).
    pub min_flush_spacing: usize,
}

/// The contents of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub top: String,
    /// Files in the directory, relative to it; the first one holds the top module.
    pub files: Vec<String>,
    pub generator: String,
    pub clock: String,
    pub parameters: DesignParameters,
    pub ports: Vec<Port>,
    /// Accelerator tops only (`parameters` then describes the array inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<AccelParameters>,
}

pub const MANIFEST_FILE: &str = "manifest.json";

/// The top module's name for a configuration, e.g. `shiftkit_sq4_4x4`.
pub fn top_name(config: &ArrayConfig) -> String {
    format!(
        "shiftkit_{}_{}x{}",
        config.datapath.name(),
        config.rows,
        config.cols
    )
}

/// Generate the Verilog of the array that `config` describes.
pub fn generate(config: &ArrayConfig) -> Result<GeneratedDesign, HwError> {
    let config = config.validated()?;
    let bits = match config.datapath {
        Datapath::Sq { bits } => bits,
        Datapath::Fp16 => return generate_fp16_array(&config),
    };
    let top = top_name(&config);
    let params = PeParams {
        acc_bits: config.acc_bits as usize,
        max_shift: 2 * config.window,
    };
    let (rows, cols) = (config.rows, config.cols);
    let (verilog, ports) = match (bits, acc_container(&config)) {
        (4, 32) => emit_verilog(SqArray::<4, 8, 32>::new(rows, cols, params), &top)?,
        (4, _) => emit_verilog(SqArray::<4, 8, 48>::new(rows, cols, params), &top)?,
        (6, 32) => emit_verilog(SqArray::<6, 12, 32>::new(rows, cols, params), &top)?,
        (6, _) => emit_verilog(SqArray::<6, 12, 48>::new(rows, cols, params), &top)?,
        (8, 32) => emit_verilog(SqArray::<8, 16, 32>::new(rows, cols, params), &top)?,
        (8, _) => emit_verilog(SqArray::<8, 16, 48>::new(rows, cols, params), &top)?,
        // `validated` admits only the widths above.
        (b, _) => return Err(crate::config::ConfigError::Bits(b).into()),
    };
    let parameters = array_parameters(&config, bits);
    Ok(GeneratedDesign {
        top,
        verilog,
        config,
        parameters,
        ports,
        accel: None,
    })
}

/// The manifest parameters of the array that `config` describes (`bits`: its operand width).
fn array_parameters(config: &ArrayConfig, bits: u32) -> DesignParameters {
    let (rows, cols) = (config.rows, config.cols);
    DesignParameters {
        rows,
        cols,
        datapath: config.datapath.name(),
        bits,
        window: config.window,
        acc_bits: config.acc_bits,
        acc_port_bits: acc_container(config),
        dataflow: config.dataflow,
        ctl_bits: CTL_BITS,
        ctl_valid_bit: MacCtl::VALID_BIT,
        ctl_flush_bit: MacCtl::FLUSH_BIT,
        ctl_shift_lsb: MacCtl::SHIFT_LSB,
        ctl_shift_bits: SHIFT_BITS,
        max_shift: 2 * config.window,
        min_flush_spacing: 2 * rows - 1,
    }
}

/// What to generate from an `ArrayConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DesignKind {
    /// The bare MAC array (`shiftkit_<dp>_<R>x<C>`, see `crate::array`).
    Array,
    /// The accelerator top around the array (`shiftkit_accel_<dp>_<R>x<C>`, see
    /// `crate::accel` and `docs/accelerator.md`), with operand buffers `k_max` deep.
    Accel { k_max: usize },
}

impl DesignKind {
    /// The accelerator top with the default buffer depth.
    pub fn accel() -> DesignKind {
        DesignKind::Accel {
            k_max: crate::accel::DEFAULT_K_MAX,
        }
    }
}

/// Generate the array or the accelerator top that `config` describes.
pub fn generate_design(kind: DesignKind, config: &ArrayConfig) -> Result<GeneratedDesign, HwError> {
    match kind {
        DesignKind::Array => generate(config),
        DesignKind::Accel { k_max } => generate_accel(config, k_max),
    }
}

/// The manifest's description of an accelerator top's L1-norm unit (opcode 6, L1NORM;
/// `docs/accelerator.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccelL1Norm {
    /// `W`: inputs are `W`-bit two's complement, `in_lanes` of them per data beat.
    pub in_bits: u32,
    pub in_lanes: usize,
    /// Rows of `1..=n_max = 2^addr_bits` elements.
    pub addr_bits: u32,
    pub n_max: usize,
    /// Output codes SQ-`bits` (the top's bits), step `2^-frac_bits`, one per byte lane of a
    /// response beat, `codes_per_beat` per beat.
    pub bits: u32,
    pub frac_bits: u32,
    pub codes_per_beat: usize,
    /// `eps` in input units as configured, and as the hardware represents it:
    /// `eps_m * 2^-eps_e` (integers, so the manifest round-trips exactly).
    pub eps: f64,
    pub eps_m: u64,
    pub eps_e: i32,
    /// The configuration itself (`AccelGeometry::with_l1norm` takes it back).
    pub config: crate::l1norm::L1NormConfig,
}

/// The floats are validated finite (`L1NormConfig::consts`), so equality is reflexive.
impl Eq for AccelL1Norm {}

fn one() -> usize {
    1
}

/// The manifest's description of an accelerator top's command / response interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccelParameters {
    /// Operand buffer depth: the largest `k_len` of LOAD_A / LOAD_B / COMPUTE.
    pub k_max: usize,
    /// Lanes of a data vector, `max(rows, cols)`.
    pub lanes: usize,
    /// Bits per data-vector lane on `cmd_data` (the SQ code width `b`; 16: FP16).
    pub lane_bits: usize,
    /// Whether data vectors carry a per-K exponent, and its bit offset within a K step.
    pub has_exp: bool,
    pub exp_lsb: usize,
    /// K steps per LOAD data beat (and per operand-buffer entry), and the bits of one K step
    /// in a beat (step `s` starts at bit `s * step_bits`).
    #[serde(default = "one")]
    pub k_per_beat: usize,
    #[serde(default)]
    pub step_bits: usize,
    /// `W_IN` and `W_OUT`.
    pub cmd_bits: usize,
    pub rsp_bits: usize,
    /// Bits per response lane (32 or 64); a DRAIN beat has `cols` lanes.
    pub result_lane_bits: usize,
    /// Minimum cycles between two flushes (the feeder pads shorter tiles itself).
    pub flush_spacing: usize,
    /// The module inside the top that holds the logic (its `cmd_data_<w>` / `rsp_data_<w>`
    /// ports are the 32-bit words of the top's ports).
    pub core: String,
    /// The L1-norm unit behind opcode 6, or `null`: opcode 6 is unknown (FP16 tops, SQ tops
    /// generated without it).
    #[serde(default)]
    pub l1norm: Option<AccelL1Norm>,
}

/// The accelerator top's name for a configuration, e.g. `shiftkit_accel_sq4_4x4`.
pub fn accel_top_name(config: &ArrayConfig) -> String {
    format!(
        "shiftkit_accel_{}_{}x{}",
        config.datapath.name(),
        config.rows,
        config.cols
    )
}

/// Generate the accelerator top around the array that `config` describes: the rust-hdl block
/// `crate::accel::top::SqAccel` (sq) or `crate::accel::fp16_top::Fp16Accel` (fp16), as module
/// `<top>_core`, inside a wrapper with the documented flat ports.
pub fn generate_accel(config: &ArrayConfig, k_max: usize) -> Result<GeneratedDesign, HwError> {
    let geom = crate::accel::AccelGeometry::new(config, k_max)?;
    generate_accel_with_l1norm(config, k_max, geom.l1norm)
}

/// [`generate_accel`] with the L1-norm unit `l1` (`None`: an SQ top without it; see
/// `AccelGeometry::with_l1norm` for what is accepted).
pub fn generate_accel_with_l1norm(
    config: &ArrayConfig,
    k_max: usize,
    l1: Option<crate::l1norm::L1NormConfig>,
) -> Result<GeneratedDesign, HwError> {
    use crate::accel::AccelGeometry;
    let config = config.validated()?;
    let geom = AccelGeometry::with_l1norm(&config, k_max, l1)?;
    generate_accel_for(&config, &geom)
}

/// The accelerator top of `geom` (built from `config` by `AccelGeometry::with_l1norm`, and
/// perhaps `with_k_per_beat`) around the array of `config`.
pub fn generate_accel_for(
    config: &ArrayConfig,
    geom: &crate::accel::AccelGeometry,
) -> Result<GeneratedDesign, HwError> {
    use crate::accel::fp16_top::Fp16Accel;
    let config = config.validated()?;
    let geom = *geom;
    let k_max = geom.k_max;
    let top = accel_top_name(&config);
    let core = format!("{top}_core");
    let params = PeParams {
        acc_bits: config.acc_bits as usize,
        max_shift: 2 * config.window,
    };
    let (raw, parameters) = match config.datapath {
        Datapath::Fp16 => (
            emit(Fp16Accel::new(&geom), &core)?.0,
            fp16_parameters(&config),
        ),
        Datapath::Sq { bits } => {
            let (raw, _) = match (bits, acc_container(&config)) {
                (4, 32) => emit(
                    <crate::sq_accel!(4, 8, 32, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (4, _) => emit(
                    <crate::sq_accel!(4, 8, 48, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (6, 32) => emit(
                    <crate::sq_accel!(6, 12, 32, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (6, _) => emit(
                    <crate::sq_accel!(6, 12, 48, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (8, 32) => emit(
                    <crate::sq_accel!(8, 16, 32, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (8, _) => emit(
                    <crate::sq_accel!(8, 16, 48, 16, 10)>::new(&geom, params),
                    &core,
                )?,
                (b, _) => return Err(crate::config::ConfigError::Bits(b).into()),
            };
            (raw, array_parameters(&config, bits))
        }
    };
    let (body, _) = rename_for_verilog(&raw)?;
    let verilog = format!("{}\n{body}", accel_wrapper(&top, &core, &geom));
    let port = |name: &str, direction, width| Port {
        name: name.into(),
        direction,
        width,
    };
    use PortDirection::{Input, Output};
    let ports = vec![
        port("clock", Input, 1),
        port("reset", Input, 1),
        port("cmd_data", Input, geom.cmd_bits()),
        port("cmd_valid", Input, 1),
        port("cmd_ready", Output, 1),
        port("rsp_data", Output, geom.rsp_bits()),
        port("rsp_valid", Output, 1),
        port("rsp_ready", Input, 1),
    ];
    let accel = AccelParameters {
        k_max,
        lanes: geom.lanes(),
        lane_bits: geom.lane_bits,
        has_exp: geom.has_exp,
        exp_lsb: geom.exp_lsb(),
        k_per_beat: geom.k_per_beat,
        step_bits: geom.step_bits(),
        cmd_bits: geom.cmd_bits(),
        rsp_bits: geom.rsp_bits(),
        result_lane_bits: geom.result_lane_bits,
        flush_spacing: geom.flush_spacing(),
        core,
        l1norm: match geom.l1norm {
            Some(c) => {
                let consts = c.consts().map_err(|e| HwError::Unsupported {
                    what: "this L1-norm configuration".into(),
                    hint: e.0,
                })?;
                Some(AccelL1Norm {
                    in_bits: c.in_bits,
                    in_lanes: geom.l1_in_lanes(),
                    addr_bits: c.addr_bits,
                    n_max: c.n_max(),
                    bits: c.bits,
                    frac_bits: c.frac_bits,
                    codes_per_beat: geom.l1_codes_per_beat(),
                    eps: c.eps,
                    eps_m: consts.e_m,
                    eps_e: consts.ee,
                    config: c,
                })
            }
            None => None,
        },
    };
    Ok(GeneratedDesign {
        top,
        verilog,
        config,
        parameters,
        ports,
        accel: Some(accel),
    })
}

/// The manifest parameters of the FP16 array inside an fp16 accelerator top.
fn fp16_parameters(config: &ArrayConfig) -> DesignParameters {
    use crate::fp16::{Fp16Ctl, FP16_CTL_BITS};
    DesignParameters {
        rows: config.rows,
        cols: config.cols,
        datapath: config.datapath.name(),
        bits: 16,
        window: 0,
        acc_bits: 32,
        acc_port_bits: 32,
        dataflow: config.dataflow,
        ctl_bits: FP16_CTL_BITS,
        ctl_valid_bit: Fp16Ctl::VALID_BIT,
        ctl_flush_bit: Fp16Ctl::FLUSH_BIT,
        ctl_shift_lsb: 0,
        ctl_shift_bits: 0,
        max_shift: 0,
        min_flush_spacing: 2 * config.rows,
    }
}

/// The top module: the documented flat ports, split into the core's 32-bit words.
fn accel_wrapper(top: &str, core: &str, geom: &crate::accel::AccelGeometry) -> String {
    use std::fmt::Write;
    let mut conns = vec![".clock(clock)".to_string(), ".reset(reset)".to_string()];
    for w in 0..geom.cmd_words() {
        // The last word of a `W_IN` that is no multiple of 32 is zero-extended.
        let hi = (32 * w + 31).min(geom.cmd_bits() - 1);
        let pad = 32 * w + 31 - hi;
        let bits = format!("cmd_data[{hi}:{}]", 32 * w);
        conns.push(if pad == 0 {
            format!(".cmd_data_{w}({bits})")
        } else {
            format!(".cmd_data_{w}({{{pad}'b0, {bits}}})")
        });
    }
    conns.push(".cmd_valid(cmd_valid)".into());
    conns.push(".cmd_ready(cmd_ready)".into());
    for w in 0..geom.rsp_words() {
        conns.push(format!(
            ".rsp_data_{w}(rsp_data[{}:{}])",
            32 * w + 31,
            32 * w
        ));
    }
    conns.push(".rsp_valid(rsp_valid)".into());
    conns.push(".rsp_ready(rsp_ready)".into());
    let mut v = String::new();
    let _ = writeln!(
        v,
        "// {top}: accelerator top (docs/accelerator.md). The logic is in {core}, whose\n\
         // cmd_data_<w> / rsp_data_<w> ports are bits 32w+31:32w of cmd_data / rsp_data."
    );
    let _ = writeln!(
        v,
        "module {top}(clock, reset, cmd_data, cmd_valid, cmd_ready, rsp_data, rsp_valid, rsp_ready);"
    );
    let _ = writeln!(v, "    input wire clock;\n    input wire reset;");
    let _ = writeln!(v, "    input wire [{}:0] cmd_data;", geom.cmd_bits() - 1);
    let _ = writeln!(v, "    input wire cmd_valid;\n    output wire cmd_ready;");
    let _ = writeln!(v, "    output wire [{}:0] rsp_data;", geom.rsp_bits() - 1);
    let _ = writeln!(v, "    output wire rsp_valid;\n    input wire rsp_ready;");
    let _ = writeln!(
        v,
        "    {core} core(\n        {}\n    );",
        conns.join(",\n        ")
    );
    let _ = writeln!(v, "endmodule // {top}");
    v
}

/// The FP16 reference array (`crate::fp16::Fp16Array`) of the same geometry. Its control bundle
/// is 2 bits (valid, flush), there is no per-K shift, and each PE carries two interleaved output
/// rows (a tile is 2R x C; see `crate::fp16::pe`).
fn generate_fp16_array(config: &ArrayConfig) -> Result<GeneratedDesign, HwError> {
    use crate::fp16::{Fp16Array, Fp16Ctl, FP16_CTL_BITS};
    let top = top_name(config);
    let (verilog, ports) = emit_verilog(Fp16Array::new(config.rows, config.cols), &top)?;
    let parameters = DesignParameters {
        rows: config.rows,
        cols: config.cols,
        datapath: config.datapath.name(),
        bits: 16,
        window: 0,
        acc_bits: 32,
        acc_port_bits: 32,
        dataflow: config.dataflow,
        ctl_bits: FP16_CTL_BITS,
        ctl_valid_bit: Fp16Ctl::VALID_BIT,
        ctl_flush_bit: Fp16Ctl::FLUSH_BIT,
        ctl_shift_lsb: 0,
        ctl_shift_bits: 0,
        max_shift: 0,
        min_flush_spacing: 2 * config.rows,
    };
    Ok(GeneratedDesign {
        top,
        verilog,
        config: *config,
        parameters,
        ports,
        accel: None,
    })
}

/// A single block's Verilog (for resource measurements of the parts of an array).
#[derive(Clone, Debug)]
pub struct GeneratedModule {
    pub top: String,
    pub verilog: String,
}

/// The `b x b` multiplier on its own, top `shiftkit_mul<b>`.
pub fn generate_multiplier(bits: u32) -> Result<GeneratedModule, HwError> {
    let top = format!("shiftkit_mul{bits}");
    let (raw, _) = match bits {
        4 => emit(crate::mul::Mul4::new(), &top)?,
        6 => emit(crate::mul::Mul6::new(), &top)?,
        8 => emit(crate::mul::Mul8::new(), &top)?,
        b => return Err(crate::config::ConfigError::Bits(b).into()),
    };
    Ok(GeneratedModule {
        top,
        verilog: rename_for_verilog(&raw)?.0,
    })
}

/// One PE of the array that `config` describes (forwarding registers + MAC + drain register),
/// top `shiftkit_<sqb>_pe`.
pub fn generate_pe(config: &ArrayConfig) -> Result<GeneratedModule, HwError> {
    use crate::pe::SqPe;
    let config = config.validated()?;
    let top = format!("shiftkit_{}_pe", config.datapath.name());
    let params = PeParams {
        acc_bits: config.acc_bits as usize,
        max_shift: 2 * config.window,
    };
    let (raw, _) = match (config.datapath, acc_container(&config)) {
        (Datapath::Sq { bits: 4 }, 32) => emit(SqPe::<4, 8, 32>::new(params), &top)?,
        (Datapath::Sq { bits: 4 }, _) => emit(SqPe::<4, 8, 48>::new(params), &top)?,
        (Datapath::Sq { bits: 6 }, 32) => emit(SqPe::<6, 12, 32>::new(params), &top)?,
        (Datapath::Sq { bits: 6 }, _) => emit(SqPe::<6, 12, 48>::new(params), &top)?,
        (Datapath::Sq { bits: 8 }, 32) => emit(SqPe::<8, 16, 32>::new(params), &top)?,
        (Datapath::Sq { bits: 8 }, _) => emit(SqPe::<8, 16, 48>::new(params), &top)?,
        _ => {
            return Err(HwError::Unsupported {
                what: format!("a {} PE", config.datapath.name()),
                hint: "only sq4, sq6 and sq8 PEs exist so far".into(),
            })
        }
    };
    Ok(GeneratedModule {
        top,
        verilog: rename_for_verilog(&raw)?.0,
    })
}

/// Write `<top>.v` and `manifest.json` into `dir` (created if missing).
pub fn write_design(design: &GeneratedDesign, dir: &Path) -> Result<Manifest, HwError> {
    std::fs::create_dir_all(dir).map_err(HwError::io("cannot create directory", dir))?;
    let file = format!("{}.v", design.top);
    let manifest = Manifest {
        top: design.top.clone(),
        files: vec![file.clone()],
        generator: format!("shiftkit-hw {} (rust-hdl 0.46)", env!("CARGO_PKG_VERSION")),
        clock: "clock".into(),
        parameters: design.parameters.clone(),
        ports: design.ports.clone(),
        accel: design.accel.clone(),
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| HwError::Parse {
        what: "the manifest".into(),
        detail: e.to_string(),
    })?;
    write_atomically(&dir.join(&file), design.verilog.as_bytes())?;
    write_atomically(&dir.join(MANIFEST_FILE), json.as_bytes())?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_small_design_with_its_ports() {
        let cfg = ArrayConfig::new(2, 3, Datapath::Sq { bits: 4 }).expect("valid");
        let d = generate(&cfg).expect("generates");
        assert_eq!(d.top, "shiftkit_sq4_2x3");
        assert!(d.verilog.contains("module shiftkit_sq4_2x3("));
        assert!(!d.verilog.contains('$'), "every `$` name was rewritten");
        let names: Vec<_> = d
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.direction, p.width))
            .collect();
        use PortDirection::*;
        assert_eq!(
            names,
            vec![
                ("clock", Input, 1),
                ("a_in_0", Input, 4),
                ("a_in_1", Input, 4),
                ("ctl_in", Input, CTL_BITS),
                ("b_in_0", Input, 4),
                ("b_in_1", Input, 4),
                ("b_in_2", Input, 4),
                ("drain_out_0", Output, 32),
                ("drain_out_1", Output, 32),
                ("drain_out_2", Output, 32),
                ("drain_valid_0", Output, 1),
                ("drain_valid_1", Output, 1),
                ("drain_valid_2", Output, 1),
                ("a_east_0", Output, 4),
                ("a_east_1", Output, 4),
                ("ctl_east_0", Output, CTL_BITS),
                ("ctl_east_1", Output, CTL_BITS),
                ("b_south_0", Output, 4),
                ("b_south_1", Output, 4),
                ("b_south_2", Output, 4),
            ]
        );
    }

    #[test]
    fn picks_the_smallest_container_and_generates_fp16() {
        let c = ArrayConfig::new(1, 1, Datapath::Sq { bits: 8 }).expect("valid");
        assert_eq!(acc_container(&c), 32);
        assert_eq!(acc_container(&c.with_acc_bits(33).expect("valid")), 48);
        let fp = ArrayConfig::new(1, 2, Datapath::Fp16).expect("valid");
        let d = generate(&fp).expect("the FP16 reference array generates");
        assert_eq!(d.top, "shiftkit_fp16_1x2");
        assert_eq!(d.parameters.ctl_bits, 2);
        let bad = ArrayConfig { rows: 0, ..c };
        assert!(matches!(generate(&bad), Err(HwError::Config(_))));
    }

    #[test]
    fn writes_verilog_and_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ArrayConfig::new(1, 1, Datapath::Sq { bits: 6 }).expect("valid");
        let d = generate(&cfg).expect("generates");
        let m = write_design(&d, dir.path()).expect("writes");
        assert_eq!(m.files, vec!["shiftkit_sq6_1x1.v".to_string()]);
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
        let back: Manifest = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, m);
        assert_eq!(back.parameters.acc_bits, 32);
        assert!(dir.path().join("shiftkit_sq6_1x1.v").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
