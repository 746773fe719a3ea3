/// The host allocates on every request (hyper, wasmtime's component
/// machinery, key-value values); mimalloc's thread-local free lists cut
/// that cost against glibc malloc (measured with scripts/bench.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vnext_host::cli::main()
}
