fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
