//! The `relatent` command line: parses arguments, calls the library, maps errors to exit codes.

mod cli;

fn main() {
    relatent::perf::keep_freed_memory();
    std::process::exit(cli::run());
}
