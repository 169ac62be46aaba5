//! Allocator settings for training loops.
//!
//! A training step allocates and frees the same large buffers every time (im2col matrices of
//! several MB, GEMM outputs, activations). glibc serves blocks above its mmap threshold with a
//! fresh `mmap` and returns them with `munmap` on free, so every step pays a page fault and a
//! kernel page clear for each 4 KiB of them: in the data-diet CNN's fp32 step that was a fifth
//! of the profile (`clear_page_erms`) and 160k page faults per 15 steps. Raising the mmap
//! threshold to glibc's maximum (32 MiB) and the trim threshold well above a step's working set
//! keeps freed blocks in the heap for the next step (20k page faults; CPU time per step 40 ->
//! 25 ms, `examples/cnn_profile.rs`).

use std::sync::Once;

/// glibc's upper bound for `M_MMAP_THRESHOLD` on 64-bit targets (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory at the top of the heap kept for reuse instead of returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 512 << 20;

/// Applies the settings once per process (later calls do nothing). Called where training and
/// GEMM work starts (`Offload::new`, the CLI); elsewhere a no-op.
pub fn keep_freed_buffers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; both values are within glibc's
        // documented ranges. A refusal (return 0) leaves the defaults, which are only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}
