fn main() {
    shiftkit::alloc::keep_freed_buffers();
    std::process::exit(shiftkit::cli::main());
}
