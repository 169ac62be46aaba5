fn main() {
    std::process::exit(shiftkit::cli::main());
}
