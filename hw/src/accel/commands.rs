//! The host side of the command format (`docs/accelerator.md`), in plain Rust: encoding commands
//! into beats, the command stream of a whole GEMM in the documented loop order, and decoding the
//! responses. The rust-hdl tests, the Verilator co-simulation and the host runtime all use it.
//!
//! A *beat* is one `cmd_data` value as its 32-bit words, least significant first
//! (`AccelGeometry::cmd_words` of them): word `w` holds bits `32w + 31 : 32w`.

use super::{AccelGeometry, EXP_BITS};

pub const OP_NOP: u32 = 0;
pub const OP_LOAD_A: u32 = 1;
pub const OP_LOAD_B: u32 = 2;
pub const OP_COMPUTE: u32 = 3;
pub const OP_DRAIN: u32 = 4;
pub const OP_STATUS: u32 = 5;
/// L1-normalize a row on the L1-norm unit (SQ tops generated with it; unknown elsewhere).
pub const OP_L1NORM: u32 = 6;

/// Header bit positions.
pub const OPCODE_LSB: u32 = 28;
pub const BANK_BIT: u32 = 27;
pub const BANK2_BIT: u32 = 26;
pub const CBANK_BIT: u32 = 25;
pub const HOLD_BIT: u32 = 24;
pub const K_LEN_MASK: u32 = 0xffff;

/// STATUS lane 1 flag bits.
pub const FLAG_COMPUTE: u32 = 1 << 0;
pub const FLAG_RESULTS_PENDING: u32 = 1 << 1;
pub const FLAG_ERROR: u32 = 1 << 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "k_len {k_len} is out of range: a LOAD or COMPUTE moves 1..={k_max} k-steps on this design"
    )]
    KLen { k_len: usize, k_max: usize },
    #[error("a data vector has {got} lanes but this buffer holds {max} per entry")]
    Lanes { got: usize, max: usize },
    #[error("lane value {value} does not fit a {bits}-bit lane")]
    LaneValue { value: i64, bits: usize },
    #[error("per-K exponent {0} does not fit the {EXP_BITS}-bit field: exponents are 0..=15")]
    Exponent(u8),
    #[error("bank {0} does not exist: banks are 0 and 1")]
    Bank(u8),
    #[error("operand shapes do not agree: {0}")]
    Shape(String),
    #[error("this design has no L1-norm unit: normalize on the host (FP16 tops never have one)")]
    NoL1Norm,
    #[error(
        "an L1NORM row of {n} elements is out of range: rows have 1..={n_max} elements on this design"
    )]
    RowLen { n: usize, n_max: usize },
    #[error("L1NORM element {value} does not fit the unit's {bits}-bit signed inputs")]
    RowValue { value: i64, bits: u32 },
    #[error("an L1NORM command packs {got} elements per data beat but this design takes {want}")]
    RowLanes { got: usize, want: usize },
    #[error("a response beat has {got} words, expected {want}")]
    BeatWidth { got: usize, want: usize },
    #[error("expected {want} response beats, got {got}")]
    Responses { got: usize, want: usize },
}

/// One data vector: `lanes[i]` is lane `i` (an SQ code, or an FP16 bit pattern), `exp` the
/// per-K exponent of this k (SQ; 0 for FP16). Lanes beyond `lanes.len()` are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataVector {
    pub lanes: Vec<i32>,
    pub exp: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Nop,
    /// Vector k = A[0..R][k] (lanes 0..R) with exponent ea_k.
    LoadA {
        bank: u8,
        vectors: Vec<DataVector>,
    },
    /// Vector k = B[k][0..C] (lanes 0..C) with exponent eb_k.
    LoadB {
        bank: u8,
        vectors: Vec<DataVector>,
    },
    /// Stream k = 0..k_len through the array; flush into C bank `c_bank` unless `hold`.
    Compute {
        a_bank: u8,
        b_bank: u8,
        c_bank: u8,
        k_len: usize,
        hold: bool,
    },
    /// R response beats: row i of C bank `c_bank`.
    Drain {
        c_bank: u8,
    },
    /// One response beat: cycle counter, flags, commands accepted.
    Status,
    /// L1-normalize `row` (integers of the unit's `W` bits) on the L1-norm unit: data beats of
    /// `per_beat` elements (`AccelGeometry::l1_in_lanes`; build it with [`Command::l1norm`]),
    /// response beats of the SQ-b codes (`decode_l1norm`).
    L1Norm {
        row: Vec<i64>,
        per_beat: usize,
    },
}

impl Command {
    /// L1NORM of `row` on this design.
    pub fn l1norm(geom: &AccelGeometry, row: Vec<i64>) -> Command {
        Command::L1Norm {
            row,
            per_beat: geom.l1_in_lanes(),
        }
    }

    pub fn compute(a_bank: u8, b_bank: u8, c_bank: u8, k_len: usize) -> Command {
        Command::Compute {
            a_bank,
            b_bank,
            c_bank,
            k_len,
            hold: false,
        }
    }

    /// The header word.
    pub fn header(&self) -> u32 {
        let op = |o: u32| o << OPCODE_LSB;
        let bit = |b: u8, pos: u32| u32::from(b & 1) << pos;
        match self {
            Command::Nop => op(OP_NOP),
            Command::LoadA { bank, vectors } => {
                op(OP_LOAD_A) | bit(*bank, BANK_BIT) | (vectors.len() as u32 & K_LEN_MASK)
            }
            Command::LoadB { bank, vectors } => {
                op(OP_LOAD_B) | bit(*bank, BANK_BIT) | (vectors.len() as u32 & K_LEN_MASK)
            }
            Command::Compute {
                a_bank,
                b_bank,
                c_bank,
                k_len,
                hold,
            } => {
                op(OP_COMPUTE)
                    | bit(*a_bank, BANK_BIT)
                    | bit(*b_bank, BANK2_BIT)
                    | bit(*c_bank, CBANK_BIT)
                    | u32::from(*hold) << HOLD_BIT
                    | (*k_len as u32 & K_LEN_MASK)
            }
            Command::Drain { c_bank } => op(OP_DRAIN) | bit(*c_bank, BANK_BIT),
            Command::Status => op(OP_STATUS),
            Command::L1Norm { row, .. } => op(OP_L1NORM) | (row.len() as u32 & K_LEN_MASK),
        }
    }

    /// Beats on `cmd_data`: the header and any data beats (a LOAD packs
    /// `geom.k_per_beat` data vectors into each).
    pub fn beats(&self, geom: &AccelGeometry) -> usize {
        1 + match self {
            Command::LoadA { vectors, .. } | Command::LoadB { vectors, .. } => {
                geom.load_beats(vectors.len())
            }
            Command::L1Norm { row, per_beat } => row.len().div_ceil((*per_beat).max(1)),
            _ => 0,
        }
    }

    /// Beats this command produces on `rsp_data`.
    pub fn response_beats(&self, geom: &AccelGeometry) -> usize {
        match self {
            Command::Drain { .. } => geom.tile_rows(),
            Command::Status => 1,
            Command::L1Norm { row, .. } => match geom.l1norm {
                Some(c) if (1..=c.n_max()).contains(&row.len()) => {
                    row.len().div_ceil(geom.l1_codes_per_beat())
                }
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Check the command against the design (what the hardware would flag as an error, and
    /// what `encode` cannot represent).
    pub fn validate(&self, geom: &AccelGeometry) -> Result<(), CommandError> {
        let bank = |b: u8| {
            if b <= 1 {
                Ok(())
            } else {
                Err(CommandError::Bank(b))
            }
        };
        let k_len = |k: usize| {
            if (1..=geom.k_max).contains(&k) {
                Ok(())
            } else {
                Err(CommandError::KLen {
                    k_len: k,
                    k_max: geom.k_max,
                })
            }
        };
        match self {
            Command::LoadA { bank: b, vectors } | Command::LoadB { bank: b, vectors } => {
                bank(*b)?;
                k_len(vectors.len())?;
                let max = if matches!(self, Command::LoadA { .. }) {
                    geom.tile_rows()
                } else {
                    geom.cols
                };
                for v in vectors {
                    if v.lanes.len() > max {
                        return Err(CommandError::Lanes {
                            got: v.lanes.len(),
                            max,
                        });
                    }
                    let lo = -(1i64 << (geom.lane_bits - 1));
                    let hi = (1i64 << geom.lane_bits) - 1;
                    if geom.has_exp && usize::from(v.exp) >= 1 << EXP_BITS {
                        return Err(CommandError::Exponent(v.exp));
                    }
                    if let Some(&x) = v
                        .lanes
                        .iter()
                        .find(|&&x| !(lo..=hi).contains(&i64::from(x)))
                    {
                        return Err(CommandError::LaneValue {
                            value: x.into(),
                            bits: geom.lane_bits,
                        });
                    }
                }
                Ok(())
            }
            Command::Compute {
                a_bank,
                b_bank,
                c_bank,
                k_len: k,
                ..
            } => {
                bank(*a_bank)?;
                bank(*b_bank)?;
                bank(*c_bank)?;
                k_len(*k)
            }
            Command::Drain { c_bank } => bank(*c_bank),
            Command::Nop | Command::Status => Ok(()),
            Command::L1Norm { row, per_beat } => {
                let c = geom.l1norm.ok_or(CommandError::NoL1Norm)?;
                if *per_beat != geom.l1_in_lanes() {
                    return Err(CommandError::RowLanes {
                        got: *per_beat,
                        want: geom.l1_in_lanes(),
                    });
                }
                if !(1..=c.n_max()).contains(&row.len()) {
                    return Err(CommandError::RowLen {
                        n: row.len(),
                        n_max: c.n_max(),
                    });
                }
                let lim = 1i64 << (c.in_bits - 1);
                if let Some(&x) = row.iter().find(|&&x| !(-lim..lim).contains(&x)) {
                    return Err(CommandError::RowValue {
                        value: x,
                        bits: c.in_bits,
                    });
                }
                Ok(())
            }
        }
    }

    /// The command's beats (header first), each `geom.cmd_words()` words.
    pub fn encode(&self, geom: &AccelGeometry) -> Result<Vec<Vec<u32>>, CommandError> {
        self.validate(geom)?;
        let mut out = Vec::with_capacity(self.beats(geom));
        let mut header = vec![0u32; geom.cmd_words()];
        header[0] = self.header();
        out.push(header);
        if let Command::LoadA { vectors, .. } | Command::LoadB { vectors, .. } = self {
            out.extend(
                vectors
                    .chunks(geom.k_per_beat)
                    .map(|v| encode_vectors(v, geom)),
            );
        }
        if let Command::L1Norm { row, per_beat } = self {
            out.extend(encode_row(row, *per_beat, geom));
        }
        Ok(out)
    }
}

/// The data beats of an L1NORM of `row`: element i in lane `i mod per_beat` (bits
/// `W j + W - 1 : W j`, two's complement) of beat `i / per_beat`; unused lanes zero. Unchecked
/// (`Command::encode` validates first; tests use it to send rows the encoder rejects).
pub fn encode_row(row: &[i64], per_beat: usize, geom: &AccelGeometry) -> Vec<Vec<u32>> {
    let w = geom
        .l1norm
        .map_or(geom.cmd_bits() / per_beat.max(1), |c| c.in_bits as usize);
    row.chunks(per_beat.max(1))
        .map(|chunk| {
            let mut words = vec![0u32; geom.cmd_words()];
            for (j, &x) in chunk.iter().enumerate() {
                put(&mut words, j * w, w, x as u64);
            }
            words
        })
        .collect()
}

/// The SQ-b codes of one L1NORM of `n` elements from its response beats (code i in byte lane
/// `i mod codes_per_beat` of beat `i / codes_per_beat`, sign-extended; the unused lanes of the
/// last beat are zero).
pub fn decode_l1norm(
    beats: &[Vec<u32>],
    n: usize,
    geom: &AccelGeometry,
) -> Result<Vec<i8>, CommandError> {
    let per = geom.l1_codes_per_beat();
    let want = n.div_ceil(per);
    if beats.len() != want {
        return Err(CommandError::Responses {
            got: beats.len(),
            want,
        });
    }
    let mut codes = Vec::with_capacity(n);
    for b in beats {
        if b.len() != geom.rsp_words() {
            return Err(CommandError::BeatWidth {
                got: b.len(),
                want: geom.rsp_words(),
            });
        }
        for j in 0..per.min(n - codes.len()) {
            codes.push((b[j / 4] >> (8 * (j % 4))) as u8 as i8);
        }
    }
    Ok(codes)
}

/// Set `width` bits at `lsb` of a beat.
fn put(words: &mut [u32], lsb: usize, width: usize, value: u64) {
    let v = value & ((1u64 << width) - 1);
    let (w, s) = (lsb / 32, lsb % 32);
    words[w] |= (v << s) as u32;
    if s + width > 32 {
        words[w + 1] |= (v >> (32 - s)) as u32;
    }
}

/// One LOAD data beat of up to `geom.k_per_beat` data vectors: vector `s` at bit
/// `s * step_bits`, its lane i at `lane_bits * i` above that and (sq) its `EXP_BITS`-bit
/// exponent above the last lane (`geom.exp_lsb()`); everything else zero.
pub fn encode_vectors(vs: &[DataVector], geom: &AccelGeometry) -> Vec<u32> {
    assert!(
        vs.len() <= geom.k_per_beat,
        "more data vectors than a beat holds"
    );
    let mut words = vec![0u32; geom.cmd_words()];
    for (s, v) in vs.iter().enumerate() {
        let at = s * geom.step_bits();
        for (i, &x) in v.lanes.iter().enumerate() {
            put(
                &mut words,
                at + i * geom.lane_bits,
                geom.lane_bits,
                x as u32 as u64,
            );
        }
        if geom.has_exp {
            put(&mut words, at + geom.exp_lsb(), EXP_BITS, u64::from(v.exp));
        }
    }
    words
}

/// All beats of a command sequence, in order.
pub fn encode_all(
    commands: &[Command],
    geom: &AccelGeometry,
) -> Result<Vec<Vec<u32>>, CommandError> {
    let mut out = vec![];
    for c in commands {
        out.extend(c.encode(geom)?);
    }
    Ok(out)
}

/// Lane `j` of a response beat as a raw two's-complement value, sign-extended to i64.
pub fn response_lane(beat: &[u32], geom: &AccelGeometry, j: usize) -> i64 {
    match geom.result_lane_bits {
        32 => i64::from(beat[j] as i32),
        _ => (u64::from(beat[2 * j]) | u64::from(beat[2 * j + 1]) << 32) as i64,
    }
}

/// The tile of one DRAIN (its `tile_rows` response beats: R x C accumulators, raw and
/// sign-extended; FP16 designs: 2R x C values whose low 32 bits are the binary32 results).
pub fn decode_drain(
    beats: &[Vec<u32>],
    geom: &AccelGeometry,
) -> Result<Vec<Vec<i64>>, CommandError> {
    if beats.len() != geom.tile_rows() {
        return Err(CommandError::Responses {
            got: beats.len(),
            want: geom.tile_rows(),
        });
    }
    beats
        .iter()
        .map(|b| {
            if b.len() != geom.rsp_words() {
                return Err(CommandError::BeatWidth {
                    got: b.len(),
                    want: geom.rsp_words(),
                });
            }
            Ok((0..geom.cols).map(|j| response_lane(b, geom, j)).collect())
        })
        .collect()
}

/// A decoded STATUS response. Designs with fewer than 3 columns have fewer lanes: the fields
/// that do not fit are `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Cycles since reset (low 32 bits) when the STATUS header was accepted.
    pub cycles: u32,
    /// `FLAG_*` bits.
    pub flags: Option<u32>,
    /// Headers accepted before this STATUS.
    pub accepted: Option<u32>,
}

impl Status {
    pub fn decode(beat: &[u32], geom: &AccelGeometry) -> Status {
        let lane = |l: usize| (l < geom.cols).then(|| response_lane(beat, geom, l) as u32);
        Status {
            cycles: lane(0).unwrap_or(0),
            flags: lane(1),
            accepted: lane(2),
        }
    }
}

/// An operand of a GEMM: a row-major `rows x cols` matrix of codes (or FP16 bit patterns), and
/// the per-K exponents (`None`: all zero, i.e. the channel axis is not K).
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    pub rows: usize,
    pub cols: usize,
    pub codes: &'a [i32],
    pub k_exps: Option<&'a [u8]>,
}

/// Where a drained tile belongs: rows `m0..m0 + rows`, columns `n0..n0 + cols` of C, partial sum
/// over `k0..k0 + k_len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    pub m0: usize,
    pub n0: usize,
    pub rows: usize,
    pub cols: usize,
    pub k0: usize,
    pub k_len: usize,
}

/// The command stream of C = A x B, and the tiles its DRAINs return, in order.
#[derive(Clone, Debug)]
pub struct GemmPlan {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub commands: Vec<Command>,
    pub tiles: Vec<TileRef>,
}

/// Plan C (M x N) = A (M x K) x B (K x N) in the loop order of `docs/accelerator.md`: for each
/// block of R rows of A (2R for fp16) and each chunk of at most `k_chunk` (and `K_MAX`) k-steps,
/// load the A block once; then for each block of C columns of B: LOAD_B into the other B bank,
/// COMPUTE into the other C bank, DRAIN the previous tile. The last tile's DRAIN ends the stream.
/// FP16 designs with more than one chunk chain the chunks of each tile in the array instead (see
/// `AccelGeometry::float_results`).
pub fn plan_gemm(
    geom: &AccelGeometry,
    a: &Operand,
    b: &Operand,
    k_chunk: usize,
) -> Result<GemmPlan, CommandError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        return Err(CommandError::Shape(format!(
            "A is {m}x{k} but B is {}x{n}",
            b.rows
        )));
    }
    if m == 0 || n == 0 || k == 0 {
        return Err(CommandError::Shape(format!(
            "C = ({m}x{k}) x ({k}x{n}) is empty"
        )));
    }
    for (name, op) in [("A", a), ("B", b)] {
        if op.codes.len() != op.rows * op.cols {
            return Err(CommandError::Shape(format!(
                "{name} is {}x{} but holds {} codes",
                op.rows,
                op.cols,
                op.codes.len()
            )));
        }
        if op.k_exps.is_some_and(|e| e.len() != k) {
            return Err(CommandError::Shape(format!(
                "{name} needs {k} per-K exponents"
            )));
        }
    }
    let exp = |op: &Operand, kk: usize| op.k_exps.map_or(0, |e| e[kk]);
    let load_a = |bank: u8, m0: usize, rows: usize, k0: usize, k_len: usize| Command::LoadA {
        bank,
        vectors: (k0..k0 + k_len)
            .map(|kk| DataVector {
                lanes: (m0..m0 + rows).map(|mm| a.codes[mm * k + kk]).collect(),
                exp: exp(a, kk),
            })
            .collect(),
    };
    let load_b = |bank: u8, n0: usize, cols: usize, k0: usize, k_len: usize| Command::LoadB {
        bank,
        vectors: (k0..k0 + k_len)
            .map(|kk| DataVector {
                lanes: b.codes[kk * n + n0..kk * n + n0 + cols].to_vec(),
                exp: exp(b, kk),
            })
            .collect(),
    };
    plan_stream(geom, (m, k, n), k_chunk, load_a, load_b)
}

/// The command stream of a `m x k` times `k x n` GEMM exactly as [`plan_gemm`] plans it, with
/// no data: every LOAD carries `k_len` empty vectors (all lanes and exponents zero). For what
/// does not depend on the data: the timing (`model::run`), beat counts, tiles. Cheap: it gathers
/// no operand.
pub fn plan_gemm_shape(
    geom: &AccelGeometry,
    (m, k, n): (usize, usize, usize),
    k_chunk: usize,
) -> Result<GemmPlan, CommandError> {
    if m == 0 || n == 0 || k == 0 {
        return Err(CommandError::Shape(format!(
            "C = ({m}x{k}) x ({k}x{n}) is empty"
        )));
    }
    let empty = |k_len: usize| vec![DataVector::default(); k_len];
    plan_stream(
        geom,
        (m, k, n),
        k_chunk,
        |bank, _, _, _, k_len| Command::LoadA {
            bank,
            vectors: empty(k_len),
        },
        |bank, _, _, _, k_len| Command::LoadB {
            bank,
            vectors: empty(k_len),
        },
    )
}

/// The loop order of [`plan_gemm`], shared with [`plan_gemm_shape`]: `load_a(bank, m0, rows, k0,
/// k_len)` / `load_b(bank, n0, cols, k0, k_len)` build the LOAD commands.
fn plan_stream(
    geom: &AccelGeometry,
    (m, k, n): (usize, usize, usize),
    k_chunk: usize,
    load_a: impl Fn(u8, usize, usize, usize, usize) -> Command,
    load_b: impl Fn(u8, usize, usize, usize, usize) -> Command,
) -> Result<GemmPlan, CommandError> {
    let chunk = k_chunk.clamp(1, geom.k_max);
    let (r, c) = (geom.tile_rows(), geom.cols);
    let chunks: Vec<(usize, usize)> = (0..k)
        .step_by(chunk)
        .map(|k0| (k0, chunk.min(k - k0)))
        .collect();
    let mut commands = vec![];
    let mut tiles = vec![];
    let (mut a_bank, mut b_bank, mut c_bank) = (0u8, 0u8, 0u8);
    let mut prev: Option<u8> = None;
    if geom.float_results && chunks.len() > 1 {
        // Binary32 sums must run over all of K in order: each tile stays in the array across
        // its chunks (COMPUTE with hold), A is loaded per tile and chunk.
        for m0 in (0..m).step_by(r) {
            let rows = r.min(m - m0);
            for n0 in (0..n).step_by(c) {
                let cols = c.min(n - n0);
                for (i, &(k0, k_len)) in chunks.iter().enumerate() {
                    commands.push(load_a(a_bank, m0, rows, k0, k_len));
                    commands.push(load_b(b_bank, n0, cols, k0, k_len));
                    let hold = i + 1 < chunks.len();
                    commands.push(Command::Compute {
                        a_bank,
                        b_bank,
                        c_bank,
                        k_len,
                        hold,
                    });
                    a_bank ^= 1;
                    b_bank ^= 1;
                }
                if let Some(p) = prev {
                    commands.push(Command::Drain { c_bank: p });
                }
                prev = Some(c_bank);
                tiles.push(TileRef {
                    m0,
                    n0,
                    rows,
                    cols,
                    k0: 0,
                    k_len: k,
                });
                c_bank ^= 1;
            }
        }
    } else {
        for m0 in (0..m).step_by(r) {
            let rows = r.min(m - m0);
            for &(k0, k_len) in &chunks {
                commands.push(load_a(a_bank, m0, rows, k0, k_len));
                for n0 in (0..n).step_by(c) {
                    let cols = c.min(n - n0);
                    commands.push(load_b(b_bank, n0, cols, k0, k_len));
                    commands.push(Command::compute(a_bank, b_bank, c_bank, k_len));
                    if let Some(p) = prev {
                        commands.push(Command::Drain { c_bank: p });
                    }
                    prev = Some(c_bank);
                    tiles.push(TileRef {
                        m0,
                        n0,
                        rows,
                        cols,
                        k0,
                        k_len,
                    });
                    b_bank ^= 1;
                    c_bank ^= 1;
                }
                a_bank ^= 1;
            }
        }
    }
    if let Some(p) = prev {
        commands.push(Command::Drain { c_bank: p });
    }
    for cmd in &commands {
        cmd.validate(geom)?;
    }
    Ok(GemmPlan {
        m,
        n,
        k,
        commands,
        tiles,
    })
}

impl GemmPlan {
    pub fn beats(&self, geom: &AccelGeometry) -> Result<Vec<Vec<u32>>, CommandError> {
        encode_all(&self.commands, geom)
    }

    /// Response beats the stream produces (R per tile).
    pub fn response_beats(&self, geom: &AccelGeometry) -> usize {
        self.tiles.len() * geom.tile_rows()
    }

    /// Each tile's drained R x C values, in the order of `tiles`.
    pub fn tile_results(
        &self,
        geom: &AccelGeometry,
        responses: &[Vec<u32>],
    ) -> Result<Vec<Vec<Vec<i64>>>, CommandError> {
        let want = self.response_beats(geom);
        if responses.len() != want {
            return Err(CommandError::Responses {
                got: responses.len(),
                want,
            });
        }
        responses
            .chunks(geom.tile_rows())
            .map(|beats| decode_drain(beats, geom))
            .collect()
    }

    /// The integer result `acc` (M x N, row-major): the tiles' partial sums over K chunks added
    /// in i64 (SQ designs).
    pub fn assemble(
        &self,
        geom: &AccelGeometry,
        responses: &[Vec<u32>],
    ) -> Result<Vec<i64>, CommandError> {
        let mut acc = vec![0i64; self.m * self.n];
        for (t, vals) in self.tiles.iter().zip(self.tile_results(geom, responses)?) {
            for i in 0..t.rows {
                for j in 0..t.cols {
                    acc[(t.m0 + i) * self.n + t.n0 + j] += vals[i][j];
                }
            }
        }
        Ok(acc)
    }
}

impl GemmPlan {
    /// The binary32 result C (M x N, row-major) of an FP16 design (each tile is drained once).
    pub fn assemble_f32(
        &self,
        geom: &AccelGeometry,
        responses: &[Vec<u32>],
    ) -> Result<Vec<f32>, CommandError> {
        let mut out = vec![0f32; self.m * self.n];
        for (t, vals) in self.tiles.iter().zip(self.tile_results(geom, responses)?) {
            for i in 0..t.rows {
                for j in 0..t.cols {
                    out[(t.m0 + i) * self.n + t.n0 + j] = f32::from_bits(vals[i][j] as u32);
                }
            }
        }
        Ok(out)
    }
}

/// `acc[m][n] = sum_k qa[m][k] * qb[k][n] * 2^(ea_k + eb_k)` in i64 (SPEC §3), the reference for
/// what the SQ tops compute.
pub fn reference_acc(a: &Operand, b: &Operand) -> Vec<i64> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut acc = vec![0i64; m * n];
    for kk in 0..k {
        let s = u32::from(a.k_exps.map_or(0, |e| e[kk])) + u32::from(b.k_exps.map_or(0, |e| e[kk]));
        for mm in 0..m {
            let x = i64::from(a.codes[mm * k + kk]) << s;
            for nn in 0..n {
                acc[mm * n + nn] += x * i64::from(b.codes[kk * n + nn]);
            }
        }
    }
    acc
}
