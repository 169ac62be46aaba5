//! Cache blocking, packing buffers and threading shared by the SIMD paths (i16 and f32).
//!
//! - A is *not* packed where that can be avoided: the micro-kernel broadcasts one 4-byte element
//!   (an f32, or an i16 k-pair, which is already adjacent in a row-major i16 row) per row and depth
//!   step, so it reads `MR` rows of row-major A in place, addressed as `a + r*rs + p*cs` bytes.
//!   Packing A would be a transpose (strided 4-byte stores); it measured ~15% of a 512^3 i16
//!   product. Only panels that cannot be read in place (rows past `m`, or an i16 operand that
//!   must be rescaled or whose odd k would read past the end) are packed into `MR`-row panels
//!   (`rs = 4`, `cs = 4*MR`), zero-padded.
//! - B is packed into *column panels* of `NR` columns (`bpack[jp*depth*NR + p*NR + j]`), so the
//!   micro-kernel streams one contiguous vector row per depth step. Columns past `n` are zero.
//! - "depth" is the packed inner dimension: k for f32, ceil(k/2) k-pairs for i16.
//!
//! Threading: the whole product is ONE rayon region. Tasks are rectangles of C, normally bands of
//! B panels (columns) over all rows, and each task packs the B panels it owns, so there is no
//! shared packed buffer and no second fork/join: on the 2-core KVM target a rayon hand-off costs
//! ~6-20 us (workers fall asleep between regions), which at 256^3 (~45 us of work on two cores)
//! made a pack-B region plus a compute region slower than one thread. When B has too few panels
//! for every thread, tasks are row bands instead (each packs all of the then-small B).
//!
//! Loops inside a task, outermost first: row blocks of `mc_panels*MR` rows, depth blocks of `kc`
//! (the B micro-panel `kc*NR` stays in L1 while every A panel of the row block reuses it; the row
//! block's A stays in L2), B panels, A panels.
//!
//! Packing buffers are thread-local and reused across calls: allocating, page-faulting and
//! freeing (munmap, with its TLB shootdown) a fresh megabyte per call was measurable.

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
    /// `first` is true for the first depth block of the tile: a kernel that overwrites C (f32)
    /// starts from +0.0 instead of the stored value; accumulating kernels (i64) ignore it.
    ///
    /// # Safety
    /// Those 4-byte reads must be in bounds for r < MR, p < depth; `b` must be valid for
    /// `depth*NR` reads, `c` for reads and writes of `MR` rows of `NR` elements at row stride
    /// `ldc`, not accessed by anyone else during the call; the CPU must support the target
    /// features the implementation uses (guaranteed by constructing it only after detection).
    unsafe fn run(
        &self,
        depth: usize,
        a: APanel,
        b: *const Self::P,
        c: *mut Self::C,
        ldc: usize,
        first: bool,
    );
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
fn with_scratch<T: Scratch, R>(
    key: &'static ScratchKey,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
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
    /// A panels per row block (the block's A, `mc_panels*MR*kc` elements, should sit in L2).
    pub(crate) mc_panels: usize,
}

/// Fills a B panel: `fill(jp, panel)` writes all `depth*NR` elements of column panel `jp`.
pub(crate) type FillB<'a, P> = &'a (dyn Fn(usize, &mut [P]) + Sync);
/// In-place A: `direct(row, p0)` gives the panel of rows `row..row+MR` from step `p0` on (for the
/// block's `d` steps) if it may be read in place (every read of `Micro::run` in bounds), else
/// `None`.
pub(crate) type DirectA<'a> = &'a (dyn Fn(usize, usize) -> Option<APanel> + Sync);
/// Packs one A panel: `pack(row, rows, p0, d, dst)` writes all `d*MR` elements of `dst`
/// (`dst[p*MR + r]`): rows `row..row+rows` (rows <= MR; zero beyond), steps `p0..p0+d`.
pub(crate) type PackA<'a, P> = &'a (dyn Fn(usize, usize, usize, usize, &mut [P]) + Sync);
/// Runs on every finished row segment of C (the f32 path flushes subnormals and NaNs).
pub(crate) type Finish<'a, C> = &'a (dyn Fn(&mut [C]) + Sync);

/// The operands and hooks of one blocked product.
pub(crate) struct Problem<'a, K: Micro> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    /// Packed depth (k, or k-pairs); must be > 0.
    pub(crate) depth: usize,
    pub(crate) fill_b: FillB<'a, K::P>,
    pub(crate) direct_a: DirectA<'a>,
    pub(crate) pack_a: PackA<'a, K::P>,
    pub(crate) finish: Option<Finish<'a, K::C>>,
}

/// A rectangle of C owned by one task: rows `r0..r1` (r0 a multiple of MR), B panels `jp0..jp1`.
#[derive(Clone, Copy)]
struct Rect {
    r0: usize,
    r1: usize,
    jp0: usize,
    jp1: usize,
}

/// C's base pointer, shared by tasks that write disjoint rectangles.
#[derive(Clone, Copy)]
struct CPtr<T>(*mut T);
// SAFETY: the pointer is only dereferenced inside `run_rect`, on the rectangle its task owns;
// rectangles are disjoint and `run_blocked` holds the `&mut [C]` borrow for the whole region.
unsafe impl<T: Send> Send for CPtr<T> {}
// SAFETY: as above; no two tasks touch the same element.
unsafe impl<T: Send> Sync for CPtr<T> {}

/// Splits `0..total` into `parts` contiguous ranges whose sizes differ by at most one.
fn split(total: usize, parts: usize, i: usize) -> (usize, usize) {
    (i * total / parts, (i + 1) * total / parts)
}

/// Runs `kern` over the problem into row-major `c` (m x n), on all rayon threads when `par`.
pub(crate) fn run_blocked<K: Micro>(
    kern: &K,
    blk: &Blocking,
    pb: &Problem<'_, K>,
    c: &mut [K::C],
    par: bool,
) {
    let (m, n) = (pb.m, pb.n);
    if m == 0 || n == 0 || pb.depth == 0 {
        return;
    }
    assert!(c.len() >= m * n, "run_blocked: C too short");
    let (mr, nr) = (K::MR, K::NR);
    let (apanels, bpanels) = (m.div_ceil(mr), n.div_ceil(nr));
    let threads = if par {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    // Two tasks per thread lets rayon even out a core that is briefly busy elsewhere.
    let want = if threads > 1 { 2 * threads } else { 1 };
    let rects: Vec<Rect> = if bpanels >= want || apanels < want {
        let t = want.min(bpanels);
        (0..t)
            .map(|i| {
                let (jp0, jp1) = split(bpanels, t, i);
                Rect {
                    r0: 0,
                    r1: m,
                    jp0,
                    jp1,
                }
            })
            .collect()
    } else {
        (0..want)
            .map(|i| {
                let (p0, p1) = split(apanels, want, i);
                Rect {
                    r0: p0 * mr,
                    r1: (p1 * mr).min(m),
                    jp0: 0,
                    jp1: bpanels,
                }
            })
            .collect()
    };
    let cptr = CPtr(c.as_mut_ptr());
    let task = |rect: Rect| run_rect(kern, blk, pb, cptr, rect);
    if rects.len() > 1 {
        rects.into_par_iter().for_each(task);
    } else {
        rects.into_iter().for_each(task);
    }
}

/// One task: packs its B panels, then runs every tile of its rectangle.
fn run_rect<K: Micro>(kern: &K, blk: &Blocking, pb: &Problem<'_, K>, c: CPtr<K::C>, rect: Rect) {
    let (n, depth) = (pb.n, pb.depth);
    let (mr, nr) = (K::MR, K::NR);
    let Rect { r0, r1, jp0, jp1 } = rect;
    let kc = blk.kc.max(1);
    let mc_rows = blk.mc_panels.max(1) * mr;
    with_scratch(
        &SCRATCH_B,
        (jp1 - jp0) * depth * nr,
        |bpack: &mut [K::P]| {
            for (t, panel) in bpack.chunks_exact_mut(depth * nr).enumerate() {
                (pb.fill_b)(jp0 + t, panel);
            }
            let bpack: &[K::P] = bpack;
            let ablock_len = blk.mc_panels.max(1) * kc.min(depth) * mr;
            with_scratch(&SCRATCH_A, ablock_len, |ablock: &mut [K::P]| {
                let mut tmp = vec![K::C::default(); mr * nr];
                let mut apanels = Vec::with_capacity(blk.mc_panels.max(1));
                let mut ic = r0;
                while ic < r1 {
                    let ic_end = (ic + mc_rows).min(r1);
                    let mut pc = 0;
                    while pc < depth {
                        let d = kc.min(depth - pc);
                        apanels.clear();
                        let chunks =
                            ablock[..(ic_end - ic).div_ceil(mr) * d * mr].chunks_exact_mut(d * mr);
                        for (ii, dst) in chunks.enumerate() {
                            let row = ic + ii * mr;
                            let h = mr.min(ic_end - row);
                            let direct = if h == mr {
                                (pb.direct_a)(row, pc)
                            } else {
                                None
                            };
                            apanels.push(direct.unwrap_or_else(|| {
                                (pb.pack_a)(row, h, pc, d, dst);
                                let size = std::mem::size_of::<K::P>();
                                APanel {
                                    a: dst.as_ptr().cast(),
                                    rs: size,
                                    cs: size * mr,
                                }
                            }));
                        }
                        for jp in jp0..jp1 {
                            let b = &bpack[((jp - jp0) * depth + pc) * nr..][..d * nr];
                            let j0 = jp * nr;
                            let w = nr.min(n - j0);
                            for (ii, &a) in apanels.iter().enumerate() {
                                let i0 = ic + ii * mr;
                                let h = mr.min(ic_end - i0);
                                // SAFETY: the tile (rows i0..i0+h, columns j0..j0+w) lies in this
                                // task's rectangle (i0 >= ic >= r0, i0+h <= r1 <= m, j0..j0+w within
                                // panels jp0..jp1 and n); `a` was just packed (d*MR elements) or
                                // vouched for by `direct_a`; `b` holds d*NR elements.
                                unsafe {
                                    tile(kern, d, a, b, c, n, i0, j0, h, w, pc == 0, &mut tmp)
                                };
                            }
                        }
                        pc += d;
                    }
                    ic = ic_end;
                }
            });
        },
    );
    if let Some(finish) = pb.finish {
        let (j0, j1) = (jp0 * nr, (jp1 * nr).min(n));
        for i in r0..r1 {
            // SAFETY: row i, columns j0..j1 lie in this task's rectangle, which no other task
            // touches; all its tiles are finished.
            finish(unsafe { std::slice::from_raw_parts_mut(c.0.add(i * n + j0), j1 - j0) });
        }
    }
}

/// One `h x w` tile of C at (i0, j0) (h <= MR, w <= NR).
///
/// # Safety
/// Rows i0..i0+h, columns j0..j0+w of the row-major C (row stride n) at `c` must be valid and
/// owned by the caller; `a` must satisfy `Micro::run`'s contract for `d` steps; `b` must hold
/// d*NR elements.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<K: Micro>(
    kern: &K,
    d: usize,
    a: APanel,
    b: &[K::P],
    c: CPtr<K::C>,
    n: usize,
    i0: usize,
    j0: usize,
    h: usize,
    w: usize,
    first: bool,
    tmp: &mut [K::C],
) {
    let (mr, nr) = (K::MR, K::NR);
    assert!(b.len() >= d * nr && tmp.len() >= mr * nr);
    if h == mr && w == nr {
        // SAFETY: the caller guarantees the full MR x NR tile and `a`; `b` is asserted; the
        // kernel's ISA was detected before `kern` was built.
        unsafe { kern.run(d, a, b.as_ptr(), c.0.add(i0 * n + j0), n, first) };
    } else {
        // Edge tile: run on a full-size scratch tile, copy the valid part in and back.
        tmp.fill(K::C::default());
        for r in 0..h {
            // SAFETY: row i0+r, columns j0..j0+w are in the caller's tile.
            let row = unsafe { std::slice::from_raw_parts(c.0.add((i0 + r) * n + j0), w) };
            tmp[r * nr..][..w].copy_from_slice(row);
        }
        // SAFETY: as above for `a`/`b`; `tmp` holds MR rows of NR at stride NR (asserted).
        unsafe { kern.run(d, a, b.as_ptr(), tmp.as_mut_ptr(), nr, first) };
        for r in 0..h {
            // SAFETY: as for the copy-in.
            let row = unsafe { std::slice::from_raw_parts_mut(c.0.add((i0 + r) * n + j0), w) };
            row.copy_from_slice(&tmp[r * nr..][..w]);
        }
    }
}
