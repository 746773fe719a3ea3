//! A misbehaving guest costs one request, never the host: an endless loop
//! is interrupted at the request deadline (500) while other requests keep
//! being served, running out of memory is a 500, a panic is a 500, and the
//! host answers normally afterwards. WASI 0.2 and 0.3 components side by side.

use crate::harness::Host;
use crate::probe::{get, probe_host};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a plain request may take while guests spin elsewhere. Without
/// busy guests one takes about a millisecond here.
const BUSY_LATENCY_LIMIT: Duration = Duration::from_millis(300);

fn limited_host() -> Host {
    probe_host()
        .arg("--request-timeout-ms")
        .arg("1000")
        .arg("--max-memory-mb")
        .arg("64")
        .start()
}

/// Starts `loops` requests to `/p3/loop`, and while they run (for at most
/// 700 ms) sends plain requests to both component kinds. Returns the plain
/// requests' latencies (those that completed while every loop was still
/// running) and the loops' (status, duration).
fn serve_while_looping(host: &Host, loops: usize) -> (Vec<(&'static str, Duration)>, Vec<(u16, Duration)>) {
    let loops_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let looping: Vec<_> = (0..loops)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let r = get(&host.url("/p3/loop"));
                    loops_done.store(true, Ordering::SeqCst);
                    (r.status, started.elapsed())
                })
            })
            .collect();
        let started = Instant::now();
        let mut latencies = Vec::new();
        'outer: while started.elapsed() < Duration::from_millis(700) {
            for path in ["/p3/headers/busy", "/p2/headers/busy"] {
                let t = Instant::now();
                let r = get(&host.url(path));
                assert_eq!(r.status, 200, "{path} while a guest loops: {}", r.body);
                if loops_done.load(Ordering::SeqCst) {
                    latencies.push((path, t.elapsed()));
                    break 'outer;
                }
                latencies.push((path, t.elapsed()));
            }
        }
        let during = latencies.len() - usize::from(loops_done.load(Ordering::SeqCst));
        assert!(
            during >= 2,
            "only {during} plain requests completed while {loops} guest(s) looped: {latencies:?}"
        );
        let loops = looping.into_iter().map(|h| h.join().unwrap()).collect();
        (latencies, loops)
    })
}

fn check_loops(loops: &[(u16, Duration)]) {
    for (status, elapsed) in loops {
        assert_eq!(*status, 500, "a guest looping past the deadline gets 500");
        assert!(
            *elapsed >= Duration::from_millis(900) && *elapsed < Duration::from_secs(5),
            "interrupted after {elapsed:?}; the deadline is 1000 ms"
        );
    }
}

#[test]
fn a_looping_guest_gets_500_at_the_deadline_while_others_are_served() {
    let host = limited_host();
    let (latencies, loops) = serve_while_looping(&host, 1);
    check_loops(&loops);
    let slow: Vec<_> = latencies.iter().filter(|(_, d)| *d > BUSY_LATENCY_LIMIT).collect();
    assert!(slow.is_empty(), "requests slower than {BUSY_LATENCY_LIMIT:?} beside one looping guest: {slow:?}");

    let r = get(&host.url("/p3/oom"));
    assert_eq!(r.status, 500, "out of memory: {}", r.body);
    let r = get(&host.url("/p3/trap"));
    assert_eq!(r.status, 500, "panic: {}", r.body);

    // Still serving, both component kinds, with state intact.
    for path in ["/p3/headers/after", "/p2/headers/after"] {
        let r = get(&host.url(path));
        assert_eq!(r.status, 200, "{path} after the failures: {}", r.body);
    }
    assert_eq!(get(&host.url("/p3/sleep/10")).body, "slept 10 ms");
    let r = crate::probe::http("PUT", &host.url("/p3/kv3/after"), &[], Some("fine"));
    assert_eq!(r.status, 200);
    assert_eq!(get(&host.url("/p2/kv2/after")).body, "fine");
}

/// As many looping guests as the machine has cores (so as many as the
/// host's async worker threads): the host must still notice new
/// connections and answer other requests promptly, not only when a
/// deadline frees a thread.
#[test]
fn looping_guests_on_every_core_do_not_stall_other_requests() {
    let host = limited_host();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let (latencies, loops) = serve_while_looping(&host, cores);
    check_loops(&loops);
    let slow: Vec<_> = latencies.iter().filter(|(_, d)| *d > BUSY_LATENCY_LIMIT).collect();
    assert!(
        slow.is_empty(),
        "with {cores} looping guests, requests took longer than {BUSY_LATENCY_LIMIT:?}: {latencies:?}"
    );
    assert_eq!(get(&host.url("/p3/headers/after")).status, 200);
}

#[test]
fn p2_and_p3_components_answer_side_by_side() {
    let host = probe_host().start();
    // Interleaved and concurrent: each request reaches its own kind.
    let answers: Vec<(String, serde_json::Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let path = if i % 2 == 0 { format!("/p3/headers/{i}") } else { format!("/p2/headers/{i}") };
                let url = host.url(&path);
                s.spawn(move || (path, get(&url).json()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (path, j) in answers {
        let kind = if path.starts_with("/p3") { "p3" } else { "p2" };
        assert_eq!(j["component"], kind, "{path}: {j}");
        assert_eq!(j["path_and_query"], path.as_str());
    }
}

