/// mimalloc instead of glibc's malloc: a proxy allocates and frees a few
/// buffers per request, and glibc's large-chunk path (with its fastbin
/// consolidation) was the costliest part of that (see docs/benchmark.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasmgate::cli::main()
}
