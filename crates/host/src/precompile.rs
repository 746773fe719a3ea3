//! Filling the compile cache in a short-lived child process.
//!
//! Compiling the application's components takes Cranelift ~200 MB of
//! working memory, and a process that compiled them kept most of it: started
//! on an empty compile cache the host idled at ~250 MB RSS against ~57 MB
//! started on a warm one (scripts/bench.sh prints both). Nearly all of the
//! difference sat in mimalloc's arena: freed pages it purges only after a
//! delay, on later allocator activity (`MIMALLOC_PURGE_DELAY=0` measured
//! 160 MB idle), partly as transparent huge pages, plus the compiled code in
//! anonymous memory where a warm start maps the cache files. So `vnext up`
//! compiles what its cache lacks in a child process (`vnext compile`), whose
//! memory goes back to the system when it exits, and then loads every
//! component from the cache, exactly as a warm start does.
//!
//! Anything that goes wrong here is only a warning: the load that follows
//! compiles a missing component in-process and reports its errors itself.

use crate::engine::{self, EngineLimits};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The `vnext` subcommand the child runs (see [`compile_files`]).
pub const COMPILE_COMMAND: &str = "compile";

/// Compiles, in a child process running `compiler compile`, every
/// component of `wasms` (the bytes to load: a component's file, or its
/// composition with its dependencies) whose artefact for `engine` is not in
/// `cache_dir` yet. `limits` must be those `engine` was made with, so the
/// child's engine writes artefacts under the same names.
pub fn fill_cache_in_child(compiler: &Path, engine: &Engine, limits: &EngineLimits, wasms: &[&[u8]], cache_dir: &Path) {
    let lacking: Vec<&[u8]> =
        wasms.iter().copied().filter(|wasm| !engine::cache_file(engine, wasm, cache_dir).exists()).collect();
    if lacking.is_empty() {
        return;
    }
    // The child reads files: hand it the bytes through the cache directory
    // (the cache key is the bytes' hash, so it names the same artefacts).
    let pending = cache_dir.join(format!("pending-{}", std::process::id()));
    let missing: Vec<PathBuf> = match std::fs::create_dir_all(&pending).and_then(|_| {
        lacking
            .iter()
            .enumerate()
            .map(|(i, wasm)| {
                let path = pending.join(format!("{i}.wasm"));
                std::fs::write(&path, wasm).map(|_| path)
            })
            .collect()
    }) {
        Ok(paths) => paths,
        Err(e) => {
            eprintln!("warning: cannot stage components in {} ({e}); compiling in this process", pending.display());
            let _ = std::fs::remove_dir_all(&pending);
            return;
        }
    };
    let started = Instant::now();
    let status = Command::new(compiler)
        .arg(COMPILE_COMMAND)
        .arg("--cache-dir")
        .arg(cache_dir)
        .arg("--max-memory-bytes")
        .arg(limits.max_memory_bytes.to_string())
        .arg("--max-instances")
        .arg(limits.max_instances.to_string())
        .args(&missing)
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => eprintln!(
            "compiled {} component file(s) in a child process ({:.1?})",
            missing.len(),
            started.elapsed()
        ),
        Ok(s) => eprintln!("warning: compiling in a child process failed ({s}); compiling in this process"),
        Err(e) => eprintln!(
            "warning: cannot run {} {COMPILE_COMMAND} ({e}); compiling in this process",
            compiler.display()
        ),
    }
    let _ = std::fs::remove_dir_all(&pending);
}

/// The child's side: compiles each wasm file of `paths` that `cache_dir`
/// lacks, with an engine made from `limits`, and writes it to the cache.
/// Each component is dropped once written; the process is meant to exit next.
pub fn compile_files(limits: &EngineLimits, cache_dir: &Path, paths: &[PathBuf]) -> anyhow::Result<()> {
    let engine = engine::new_engine(limits)?;
    for path in paths {
        let started = Instant::now();
        let wasm = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read component {}: {e}", path.display()))?;
        let cached = engine::cache_file(&engine, &wasm, cache_dir);
        if cached.exists() {
            continue;
        }
        let component = Component::new(&engine, &wasm)
            .map_err(|e| anyhow::anyhow!("cannot compile component {}: {e}", path.display()))?;
        engine::write_cache(&component, &cached)
            .map_err(|e| anyhow::anyhow!("cannot write compile cache {}: {e}", cached.display()))?;
        eprintln!("compiled {} ({:.1?})", path.display(), started.elapsed());
    }
    // What compiling cost, for the log (and scripts/bench.sh): it is this
    // process's own and goes away with it.
    if let Some(peak) = peak_rss_kib() {
        eprintln!("compiler peak RSS {:.1} MB", peak as f64 / 1024.0);
    }
    Ok(())
}

/// This process's peak resident set (`VmHWM`), where /proc tells it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
