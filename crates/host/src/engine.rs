//! The wasmtime engine and component compilation with an on-disk cache.
//!
//! Compiling a component with Cranelift takes seconds on two cores; the
//! cache keeps each compiled artefact under `<state dir>/cache/` keyed by a
//! hash of the wasm bytes and of the engine's configuration, so a second
//! start only maps the file (well under a second).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch ticker advances; the granularity of request deadlines
/// and the longest slice a busy guest runs between its pauses (10 ms gave
/// the requests beside a looping guest a 10.5 ms p99, 2 ms gives 5.4 ms;
/// a tick costs a short-lived guest nothing unless it is running then).
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(2);

/// Bytes of each linear memory (and of each async stack) kept mapped between instances.
pub const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Limits that shape the engine (the pooling allocator reserves for them).
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// Component instances alive at once (concurrent requests).
    pub max_instances: u32,
}

pub fn new_engine(limits: &EngineLimits) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // `VNEXT_PERFMAP=1` names guest code in `perf` profiles (/tmp/perf-<pid>.map).
    if std::env::var_os("VNEXT_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(limits.max_instances);
    // A Rust component has a few core instances (main module, adapters),
    // each with at most one memory and a table or two.
    pool.total_core_instances(limits.max_instances * 8);
    pool.total_memories(limits.max_instances * 4);
    pool.total_tables(limits.max_instances * 8);
    pool.total_stacks(limits.max_instances * 2);
    pool.max_memory_size(limits.max_memory_bytes);
    pool.max_memories_per_component(16);
    pool.max_component_instance_size(1 << 20);
    // A request touches a few MiB of fresh heap and stack. Keeping that much
    // of each freed slot mapped (reset with memset instead of madvise) spares
    // hundreds of page faults per request; measured with scripts/bench.sh.
    pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
    pool.table_keep_resident(64 * 1024);
    pool.async_stack_keep_resident(KEEP_RESIDENT_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))
}

/// Loads a component from its bytes (a file's, or a composition made at
/// load), from the cache when it holds a compatible build; `label` names it
/// in messages. The cache key is the bytes' hash.
pub fn load_component_bytes(
    engine: &Engine,
    bytes: &[u8],
    label: &str,
    cache_dir: &Path,
) -> anyhow::Result<(Component, CacheOutcome)> {
    let cached = cache_file(engine, bytes, cache_dir);
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of an
        // engine with the same compatibility hash, in a directory only this
        // host writes; a stale or foreign file fails the hash check in the name.
        // With perf maps on, the code is copied to anonymous memory: perf
        // looks names up in /tmp/perf-<pid>.map only for anonymous code and
        // would show bare offsets into the cache file otherwise.
        let loaded = if std::env::var_os("VNEXT_PERFMAP").is_some() {
            std::fs::read(&cached)
                .map_err(wasmtime::Error::from)
                .and_then(|b| unsafe { Component::deserialize(engine, &b) })
        } else {
            unsafe { Component::deserialize_file(engine, &cached) }
        };
        match loaded {
            Ok(c) => return Ok((c, CacheOutcome::Hit)),
            Err(e) => eprintln!("warning: ignoring unusable cache file {}: {e}", cached.display()),
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("cannot compile component {label}: {e}"))?;
    if let Err(e) = write_cache(&component, &cached) {
        eprintln!("warning: cannot write compile cache {}: {e}", cached.display());
    }
    Ok((component, CacheOutcome::Miss))
}

/// Where the compiled artefact of `wasm` lives in `cache_dir`: named by a
/// hash of the bytes, of the engine's compatibility hash and of this host's
/// version, so any change of one of them misses.
pub fn cache_file(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> PathBuf {
    let mut h = DefaultHasher::new();
    wasm.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    cache_dir.join(format!("{:016x}.cwasm", h.finish()))
}

/// Serializes `component` into the cache file `cached` (see [`cache_file`]).
pub fn write_cache(component: &Component, cached: &Path) -> anyhow::Result<()> {
    if let Some(dir) = cached.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Write then rename, so a concurrent start never maps half a file.
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, cached)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}
