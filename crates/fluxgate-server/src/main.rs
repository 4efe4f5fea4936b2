//! `fluxgate`: the headless router and its command line.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program: printing is its interface

mod cli;

// glibc's allocator showed as ~20% of the proxy path's instructions; mimalloc halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
