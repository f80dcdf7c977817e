//! `vigil`: the Vigil command-line tool (`vigil --help`; the commands are in
//! `vigil_cli::cli`).

fn main() -> std::process::ExitCode {
    vigil_cli::cli::main()
}
