//! The `relatent` command line: parses arguments, calls the library, maps errors to exit codes.

mod cli;

fn main() {
    relatent::perf::keep_freed_memory();
    // The first Ctrl-C lets a training run checkpoint and stop; a second one ends the process.
    let mut pressed = false;
    let _ = ctrlc::set_handler(move || {
        if std::mem::replace(&mut pressed, true) {
            std::process::exit(130);
        }
        eprintln!("\nrelatent: stopping (Ctrl-C again to quit at once)");
        relatent::train::request_stop();
    });
    std::process::exit(cli::run());
}
