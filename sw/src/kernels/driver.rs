//! Cache blocking, packing buffers and threading shared by the SIMD paths (i16 and f32).
//!
//! Layout (GotoBLAS/BLIS style, simplified for this machine's sizes):
//! - B is packed once, up front, into *column panels* of `NR` columns
//!   (`bpack[jp*depth*NR + p*NR + j]`), so the micro-kernel streams one contiguous vector row per
//!   depth step. Columns past `n` are zero.
//! - A is *not* packed where that can be avoided: the micro-kernel broadcasts one 4-byte element
//!   (an f32, or an i16 k-pair, which is already adjacent in a row-major i16 row) per row and depth
//!   step, so it can read `MR` rows of row-major A in place, addressed as `a + r*rs + p*cs` bytes.
//!   Packing A would be a transpose (strided 4-byte stores), and it measured at ~15% of a 512^3
//!   i16 product. Only panels that cannot be read in place (rows past `m`, or an i16 operand that
//!   must be rescaled or whose odd k would read past the end) are packed, inside the rayon task,
//!   into `MR`-row panels (`rs = 4`, `cs = 4*MR`), zero-padded.
//! - "depth" is the packed inner dimension: k for f32, ceil(k/2) k-pairs for i16.
//!
//! Loops, outermost first: rayon over row bands of C (each task owns a disjoint `&mut` band, so
//! no synchronisation), depth blocks of `kc` (the B micro-panel `kc*NR` stays in L1 while every A
//! panel of the band reuses it; the band's A block stays in L2), B panels, A panels.
//!
//! Packing buffers are thread-local and reused across calls: allocating, page-faulting and
//! freeing (munmap, with its TLB shootdown) a fresh megabyte per call cost as much as a quarter of
//! a 512^3 product on the target machine.

use rayon::prelude::*;
use std::cell::RefCell;
use std::thread::LocalKey;

/// Expands `$body` once per listed index, with `$i` bound as a `const`. Micro-kernels index their
/// accumulator arrays with it: with literal indices LLVM reliably keeps every accumulator in a
/// register, whereas plain `for r in 0..MR` loops over the arrays were seen to spill (the AVX-512
/// i16 kernel ran at a third of its speed).
macro_rules! unroll {
    ($i:ident in [$($v:literal),* $(,)?] $body:block) => {
        $( { const $i: usize = $v; $body } )*
    };
}
pub(crate) use unroll;

/// A register-blocked micro-kernel: computes one `MR x NR` tile of C over `depth` packed steps.
pub(crate) trait Micro: Sync {
    /// Packed element (an i16 pair in an i32, or an f32).
    type P: Scratch;
    /// Output element.
    type C: Copy + Default + Send + Sync;
    const MR: usize;
    const NR: usize;

    /// Updates the C tile from `depth` packed steps (i64 paths add into it, the f32 path continues
    /// each output's running sum from the value stored there).
    ///
    /// A's element (row r, step p) is the 4-byte value at byte address `a.a + r*a.rs + p*a.cs`.
    ///
    /// # Safety
    /// Those 4-byte reads must be in bounds for r < MR, p < depth; `b` must be valid for
    /// `depth*NR` reads, `c` for reads and writes of `MR` rows of `NR` elements at row stride
    /// `ldc`; the CPU must support the target features the implementation uses (guaranteed by
    /// constructing it only after detection).
    unsafe fn run(&self, depth: usize, a: APanel, b: *const Self::P, c: *mut Self::C, ldc: usize);
}

/// Where a micro-kernel finds its A panel: element (r, p) is the unaligned 4-byte value at byte
/// address `a + r*rs + p*cs`.
#[derive(Clone, Copy)]
pub(crate) struct APanel {
    pub(crate) a: *const u8,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// One 64-byte cache line: the unit of the scratch buffers, which makes them 64-byte aligned so
/// that a 16-lane packed B row is exactly one line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u32; 16]);

type ScratchKey = LocalKey<RefCell<Vec<Line>>>;

thread_local! {
    static SCRATCH_A: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    static SCRATCH_B: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Buffers larger than this are allocated per call instead of being kept by the thread.
const KEEP_MAX_BYTES: usize = 32 << 20;

/// A 4-byte plain-old-data element that may live in scratch memory.
pub(crate) trait Scratch: Copy + Default + Send + Sync + sealed::Sealed {}
impl Scratch for i32 {}
impl Scratch for f32 {}
mod sealed {
    pub trait Sealed {}
    impl Sealed for i32 {}
    impl Sealed for f32 {}
}

/// Runs `f` on a 64-byte aligned buffer of `len` elements with unspecified contents (callers
/// overwrite every element they read). Reuses the thread's buffer `key`; if that is already in
/// use on this thread (a re-entrant call, e.g. the caller's own rayon task stolen while we wait)
/// or too large to keep, a fresh one is allocated.
fn with_scratch<T: Scratch, R>(key: &'static ScratchKey, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let elems_per_line = 64 / std::mem::size_of::<T>();
    let lines = len.div_ceil(elems_per_line);
    let view = |v: &mut Vec<Line>| -> &mut [T] {
        // SAFETY: `v` holds at least `lines` 64-byte-aligned lines = at least `len` elements of
        // the 4-byte type T (size and alignment checked by `Scratch` being implemented only for
        // i32 and f32, for which every bit pattern is valid), and the returned slice borrows `v`
        // mutably, so nothing else aliases it.
        unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<T>(), len) }
    };
    let keep = lines * 64 <= KEEP_MAX_BYTES;
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) if keep => {
            if v.len() < lines {
                v.resize(lines, Line([0; 16]));
            }
            f(view(&mut v))
        }
        _ => {
            let mut v = vec![Line([0; 16]); lines];
            f(view(&mut v))
        }
    })
}

/// Cache-blocking parameters, in packed depth units and A panels.
pub(crate) struct Blocking {
    /// Depth steps per block (B micro-panel `kc*NR` should sit in L1).
    pub(crate) kc: usize,
    /// Most A panels per rayon task (the task's A block `mc_panels*MR*kc` should sit in L2).
    pub(crate) mc_panels: usize,
}

/// Fills a B panel: `fill(jp, panel)` writes all `depth*NR` elements of column panel `jp`.
pub(crate) type FillB<'a, P> = &'a (dyn Fn(usize, &mut [P]) + Sync);
/// In-place A: `direct(row, p0, d)` gives the panel of rows `row..row+MR`, steps `p0..p0+d`, if
/// it may be read in place (every read of `Micro::run` in bounds), else `None`.
pub(crate) type DirectA<'a> = &'a (dyn Fn(usize, usize, usize) -> Option<APanel> + Sync);
/// Packs one A panel: `pack(row, rows, p0, d, dst)` writes all `d*MR` elements of `dst`
/// (`dst[p*MR + r]`): rows `row..row+rows` (rows <= MR; zero beyond), steps `p0..p0+d`.
pub(crate) type PackA<'a, P> = &'a (dyn Fn(usize, usize, usize, usize, &mut [P]) + Sync);
/// Per-task hook on the task's band of C rows (`rows * n` elements), before and after the tile
/// loops. The f32 path uses them to zero C and to flush subnormals while the band is hot.
pub(crate) type BandHook<'a, C> = &'a (dyn Fn(&mut [C]) + Sync);

/// The operands and hooks of one blocked product.
pub(crate) struct Problem<'a, K: Micro> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    /// Packed depth (k, or k-pairs).
    pub(crate) depth: usize,
    pub(crate) fill_b: FillB<'a, K::P>,
    pub(crate) direct_a: DirectA<'a>,
    pub(crate) pack_a: PackA<'a, K::P>,
    pub(crate) prologue: BandHook<'a, K::C>,
    pub(crate) epilogue: BandHook<'a, K::C>,
}

/// Runs `kern` over the problem into row-major `c` (m x n), on both cores when `par`.
pub(crate) fn run_blocked<K: Micro>(
    kern: &K,
    blk: &Blocking,
    pb: &Problem<'_, K>,
    c: &mut [K::C],
    par: bool,
) {
    let (m, n, depth) = (pb.m, pb.n, pb.depth);
    if m == 0 || n == 0 {
        return;
    }
    let (mr, nr) = (K::MR, K::NR);
    let bpanels = n.div_ceil(nr);
    with_scratch(&SCRATCH_B, bpanels * depth * nr, |bpack: &mut [K::P]| {
        if depth > 0 {
            let fill = |(jp, panel): (usize, &mut [K::P])| (pb.fill_b)(jp, panel);
            if par {
                bpack.par_chunks_mut(depth * nr).enumerate().for_each(fill);
            } else {
                bpack.chunks_mut(depth * nr).enumerate().for_each(fill);
            }
        }
        let bpack: &[K::P] = bpack;

        // Row bands: a multiple of the thread count, each at most `mc_panels` panels, panel counts
        // differing by at most one so that both cores finish together.
        let panels = m.div_ceil(mr);
        let threads = if par { rayon::current_num_threads().max(1) } else { 1 };
        let mc = blk.mc_panels.max(1);
        let ntasks = (threads * panels.div_ceil(threads * mc)).min(panels);
        let mut bands = Vec::with_capacity(ntasks);
        let mut rest = &mut c[..m * n];
        let mut row0 = 0;
        for t in 0..ntasks {
            let p_end = (t + 1) * panels / ntasks;
            let row1 = (p_end * mr).min(m);
            let (band, tail) = rest.split_at_mut((row1 - row0) * n);
            bands.push((row0, band));
            rest = tail;
            row0 = row1;
        }

        let task = |(row0, band): (usize, &mut [K::C])| {
            (pb.prologue)(band);
            let rows = band.len() / n;
            let kc = blk.kc.max(1);
            let ipanels = rows.div_ceil(mr);
            with_scratch(&SCRATCH_A, ipanels * kc.min(depth) * mr, |ablock: &mut [K::P]| {
                let mut tmp = vec![K::C::default(); mr * nr];
                let mut apanels = Vec::with_capacity(ipanels);
                let mut pc = 0;
                while pc < depth {
                    let d = kc.min(depth - pc);
                    apanels.clear();
                    for (ii, dst) in ablock[..ipanels * d * mr].chunks_exact_mut(d * mr).enumerate() {
                        let (row, h) = (row0 + ii * mr, mr.min(rows - ii * mr));
                        let direct = if h == mr { (pb.direct_a)(row, pc, d) } else { None };
                        apanels.push(direct.unwrap_or_else(|| {
                            (pb.pack_a)(row, h, pc, d, dst);
                            let size = std::mem::size_of::<K::P>();
                            APanel { a: dst.as_ptr().cast(), rs: size, cs: size * mr }
                        }));
                    }
                    for jp in 0..bpanels {
                        let j0 = jp * nr;
                        let w = nr.min(n - j0);
                        let b = &bpack[(jp * depth + pc) * nr..][..d * nr];
                        for (ii, &a) in apanels.iter().enumerate() {
                            let i0 = ii * mr;
                            let h = mr.min(rows - i0);
                            tile(kern, d, a, b, band, i0, j0, h, w, n, &mut tmp);
                        }
                    }
                    pc += d;
                }
            });
            (pb.epilogue)(band);
        };
        if par && bands.len() > 1 {
            bands.into_par_iter().for_each(task);
        } else {
            bands.into_iter().for_each(task);
        }
    });
}

/// One `h x w` tile of `band` at (i0, j0) (h <= MR, w <= NR).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<K: Micro>(
    kern: &K,
    d: usize,
    a: APanel,
    b: &[K::P],
    band: &mut [K::C],
    i0: usize,
    j0: usize,
    h: usize,
    w: usize,
    n: usize,
    tmp: &mut [K::C],
) {
    let (mr, nr) = (K::MR, K::NR);
    assert!(b.len() >= d * nr && tmp.len() >= mr * nr);
    if h == mr && w == nr {
        assert!((i0 + mr - 1) * n + j0 + nr <= band.len());
        // SAFETY: `a` is either a packed panel of d*MR elements (written just before, addressed
        // with rs = element size, cs = MR * element size) or an in-place panel that `direct_a`
        // vouched for; `b` holds d*NR elements (asserted); the tile spans rows i0..i0+MR and
        // columns j0..j0+NR of `band` (stride n), whose last element is in bounds (asserted);
        // the kernel's ISA was detected before `kern` was built.
        unsafe { kern.run(d, a, b.as_ptr(), band.as_mut_ptr().add(i0 * n + j0), n) };
    } else {
        // Edge tile: run on a full-size scratch tile, copy the valid part back.
        tmp.fill(K::C::default());
        for r in 0..h {
            tmp[r * nr..][..w].copy_from_slice(&band[(i0 + r) * n + j0..][..w]);
        }
        // SAFETY: as above for `a`/`b`; `tmp` holds MR rows of NR at stride NR (asserted).
        unsafe { kern.run(d, a, b.as_ptr(), tmp.as_mut_ptr(), nr) };
        for r in 0..h {
            band[(i0 + r) * n + j0..][..w].copy_from_slice(&tmp[r * nr..][..w]);
        }
    }
}
