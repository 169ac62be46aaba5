//! Compiles the fixed host-side loader (`cpp/loader.cc`) and the `cxx` bridge of `src/model.rs`.
//! Nothing design-specific is compiled here: per-design model libraries are built at run time.

fn main() {
    cxx_build::bridge("src/model.rs")
        .file("cpp/loader.cc")
        .std("c++17")
        .compile("shiftkit_sim_loader");
    // The loader dlopen()s model libraries (libdl is part of libc on glibc >= 2.34; linking it
    // explicitly keeps older systems working).
    println!("cargo:rustc-link-lib=dl");
    for f in ["src/model.rs", "cpp/loader.cc", "cpp/loader.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
