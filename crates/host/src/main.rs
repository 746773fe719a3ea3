fn main() -> std::process::ExitCode {
    vnext_host::cli::main()
}
