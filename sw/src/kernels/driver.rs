//! Cache blocking and threading shared by the packed SIMD paths (i16 and f32).
//!
//! Layout (GotoBLAS/BLIS style, simplified for this machine's sizes):
//! - A is packed once into *row panels* of `MR` rows: panel `ip` holds, for each depth step `p`,
//!   the `MR` values of rows `ip*MR..` contiguously (`apack[ip*depth*MR + p*MR + r]`), so the
//!   micro-kernel broadcasts them from consecutive addresses. Rows past `m` are zero.
//! - B is packed once into *column panels* of `NR` columns (`bpack[jp*depth*NR + p*NR + j]`), so
//!   the micro-kernel streams one contiguous vector row per depth step. Columns past `n` are zero.
//! - "depth" is the packed inner dimension: k for f32, ceil(k/2) k-pairs for i16.
//!
//! Loops, outermost first: rayon over row blocks of C (each task owns a disjoint `&mut` band of
//! rows, so no synchronisation), then depth blocks of `kc` (a B micro-panel of `kc*NR` stays in
//! L1 while it is reused by every A panel of the task, and the task's A block of
//! `mc*kc` stays in L2), then B panels, then A panels. Packing everything up front costs one extra
//! pass over A and B but keeps the tasks free of shared mutable scratch.

use rayon::prelude::*;

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
    type P: Copy + Default + Send + Sync;
    /// Output element.
    type C: Copy + Default + Send + Sync;
    const MR: usize;
    const NR: usize;

    /// Updates the C tile from `depth` packed steps (i64 paths add into it, the f32 path continues
    /// each output's running sum from the value stored there).
    ///
    /// # Safety
    /// `a` must be valid for `depth*MR` reads, `b` for `depth*NR` reads, `c` for reads and writes
    /// of `MR` rows of `NR` elements at row stride `ldc`, and the CPU must support the target
    /// features the implementation uses (guaranteed by constructing it only after detection).
    unsafe fn run(
        &self,
        depth: usize,
        a: *const Self::P,
        b: *const Self::P,
        c: *mut Self::C,
        ldc: usize,
    );
}

/// A zero-initialised buffer whose usable part starts on a 64-byte boundary, so every packed
/// B row of a 64-byte micro-panel row is exactly one cache line.
pub(crate) struct Packed<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> Packed<T> {
    pub(crate) fn zeroed(len: usize) -> Self {
        const ALIGN: usize = 64;
        let size = std::mem::size_of::<T>().max(1);
        let slack = ALIGN / size;
        let buf = vec![T::default(); len + slack];
        let addr = buf.as_ptr() as usize;
        // Vec<T> is aligned to T, so the distance to the next 64-byte boundary is a whole number of
        // elements whenever size divides 64 (true for the 4-byte types used here); otherwise we
        // simply do not align.
        let misalign = (ALIGN - addr % ALIGN) % ALIGN;
        let off = if misalign % size == 0 { misalign / size } else { 0 };
        Packed { buf, off, len }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

/// Fills `dst` panel by panel (`fill(panel_index, panel)`), on both cores when `par`.
pub(crate) fn pack_panels<T: Send>(
    dst: &mut [T],
    panel_len: usize,
    par: bool,
    fill: impl Fn(usize, &mut [T]) + Sync,
) {
    if panel_len == 0 {
        return;
    }
    if par {
        dst.par_chunks_mut(panel_len)
            .enumerate()
            .for_each(|(i, p)| fill(i, p));
    } else {
        dst.chunks_mut(panel_len)
            .enumerate()
            .for_each(|(i, p)| fill(i, p));
    }
}

/// Cache-blocking parameters, in packed depth units and A panels.
pub(crate) struct Blocking {
    /// Depth steps per block (B micro-panel `kc*NR` should sit in L1).
    pub(crate) kc: usize,
    /// Most A panels per rayon task (the task's A block `mc_panels*MR*kc` should sit in L2).
    pub(crate) mc_panels: usize,
}

/// Per-task hooks run on the task's band of C rows (`m_rows * n` elements), before and after the
/// tile loops. The f32 path uses them to zero C and to flush subnormals while the band is hot.
pub(crate) type BandHook<'a, C> = &'a (dyn Fn(&mut [C]) + Sync);

/// Runs `kern` over the packed operands into row-major `c` (m x n).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_blocked<K: Micro>(
    kern: &K,
    blk: &Blocking,
    m: usize,
    n: usize,
    depth: usize,
    apack: &[K::P],
    bpack: &[K::P],
    c: &mut [K::C],
    par: bool,
    prologue: BandHook<'_, K::C>,
    epilogue: BandHook<'_, K::C>,
) {
    if m == 0 || n == 0 {
        return;
    }
    let panels = m.div_ceil(K::MR);
    let threads = if par {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    // Equal-sized tasks, a multiple of the thread count, each at most `mc_panels` panels, so both
    // cores finish together (e.g. 43 panels -> 4 tasks of 11 rather than 16+16+11).
    let mc = blk.mc_panels.max(1);
    let ntasks = threads * panels.div_ceil(threads * mc);
    let per_task = panels.div_ceil(ntasks);
    let band_rows = per_task * K::MR;

    let task = |t: usize, band: &mut [K::C]| {
        prologue(band);
        let rows = band.len() / n;
        let ip0 = t * per_task;
        let mut tmp = vec![K::C::default(); K::MR * K::NR];
        let kc = blk.kc.max(1);
        let mut pc = 0;
        while pc < depth {
            let d = kc.min(depth - pc);
            for jp in 0..n.div_ceil(K::NR) {
                let j0 = jp * K::NR;
                let w = K::NR.min(n - j0);
                let b = &bpack[(jp * depth + pc) * K::NR..][..d * K::NR];
                for ii in 0..rows.div_ceil(K::MR) {
                    let i0 = ii * K::MR;
                    let h = K::MR.min(rows - i0);
                    let a = &apack[((ip0 + ii) * depth + pc) * K::MR..][..d * K::MR];
                    if h == K::MR && w == K::NR {
                        // SAFETY: `a`/`b` are slices of exactly d*MR / d*NR elements; the tile
                        // spans rows i0..i0+MR <= rows and columns j0..j0+NR <= n of `band`
                        // (rows*n elements, stride n), so every touched element is in bounds; the
                        // kernel's ISA was detected before `kern` was built.
                        unsafe {
                            kern.run(
                                d,
                                a.as_ptr(),
                                b.as_ptr(),
                                band.as_mut_ptr().add(i0 * n + j0),
                                n,
                            )
                        };
                    } else {
                        // Edge tile: run on a full-size scratch tile, copy the valid part back.
                        tmp.fill(K::C::default());
                        for r in 0..h {
                            tmp[r * K::NR..][..w].copy_from_slice(&band[(i0 + r) * n + j0..][..w]);
                        }
                        // SAFETY: as above for `a`/`b`; `tmp` holds exactly MR rows of NR at
                        // stride NR.
                        unsafe { kern.run(d, a.as_ptr(), b.as_ptr(), tmp.as_mut_ptr(), K::NR) };
                        for r in 0..h {
                            band[(i0 + r) * n + j0..][..w].copy_from_slice(&tmp[r * K::NR..][..w]);
                        }
                    }
                }
            }
            pc += d;
        }
        epilogue(band);
    };

    let c = &mut c[..m * n];
    if par && ntasks > 1 {
        c.par_chunks_mut(band_rows * n)
            .enumerate()
            .for_each(|(t, band)| task(t, band));
    } else {
        c.chunks_mut(band_rows * n)
            .enumerate()
            .for_each(|(t, band)| task(t, band));
    }
}
