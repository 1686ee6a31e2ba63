use std::process::ExitCode;

fn main() -> ExitCode {
    talosctl::run(std::env::args_os())
}
