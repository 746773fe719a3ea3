//! Instance life cycle as in Spin 4: a WASI 0.3 instance serves up to
//! `--max-instance-reuse-count` sequential requests (default 128), a WASI
//! 0.2 component gets a fresh instance per request, and an instance that
//! trapped or was interrupted is never used again.

use crate::probe::{get, probe_host};

fn counts(host: &crate::harness::Host, path: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = get(&host.url(path));
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            r.body
        })
        .collect()
}

#[test]
fn p3_instances_are_reused_up_to_the_reuse_count() {
    // Default: sequential requests share one instance.
    let host = probe_host().start();
    assert_eq!(counts(&host, "/p3/count", 5), ["1", "2", "3", "4", "5"]);
    // Each component has its own instances, even from the same wasm file.
    assert_eq!(counts(&host, "/nokv/count", 2), ["1", "2"]);
    drop(host);

    let host = probe_host().arg("--max-instance-reuse-count").arg("3").start();
    assert_eq!(counts(&host, "/p3/count", 7), ["1", "2", "3", "1", "2", "3", "1"]);
    drop(host);

    let host = probe_host().arg("--max-instance-reuse-count").arg("1").start();
    assert_eq!(counts(&host, "/p3/count", 3), ["1", "1", "1"]);
}

#[test]
fn a_trapped_or_interrupted_p3_instance_is_not_reused() {
    let host = probe_host().arg("--request-timeout-ms").arg("500").start();
    assert_eq!(counts(&host, "/p3/count", 2), ["1", "2"]);
    // The idle instance (which has served 2) panics: it must be discarded.
    assert_eq!(get(&host.url("/p3/trap")).status, 500);
    assert_eq!(counts(&host, "/p3/count", 2), ["1", "2"], "after a trap");
    // Interrupted at the deadline: discarded too.
    assert_eq!(get(&host.url("/p3/loop")).status, 500);
    assert_eq!(counts(&host, "/p3/count", 2), ["1", "2"], "after an interrupted request");
    // Out of memory: discarded too.
    assert_eq!(get(&host.url("/p3/oom")).status, 500);
    assert_eq!(counts(&host, "/p3/count", 1), ["1"], "after running out of memory");
}

/// As in Spin, a WASI 0.2 component gets a fresh instance for every
/// request: nothing a request leaves in memory is seen by the next.
#[test]
fn p2_components_get_a_fresh_instance_per_request() {
    let host = probe_host().start();
    assert_eq!(counts(&host, "/p2/count", 5), ["1", "1", "1", "1", "1"]);
}
