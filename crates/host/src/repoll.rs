//! [`Repoll`]: polls a future again at once when it wakes itself while
//! being polled, instead of handing the wake to tokio, while nothing else
//! is waiting for the worker.
//!
//! A wasm request runs as one future (wasmtime's `run_concurrent`), and
//! during one poll the guest and the host wake each other many times
//! (a guest task finishing, a body stream written then read). Each such
//! self-wake makes tokio's multi-threaded scheduler requeue the task as a
//! yield and unpark an idle worker to steal it: measured at one connection,
//! ~2.7 eventfd writes and 4 context switches per request against 1 for a
//! native handler. `Repoll` absorbs wakes that happen during its own poll
//! and loops (up to [`MAX_REPOLLS`] times, then it yields to tokio like
//! any future, so one request cannot hog a worker); wakes from elsewhere
//! (a timer, another task) go to tokio unchanged.
//!
//! It does so only while its `alone` check says no other request is in
//! flight: under load, letting tokio interleave the requests of many
//! connections measured ~10% more throughput and a lower p99 than running
//! each to the end (scripts/bench.sh), and the idle workers it would wake
//! are busy anyway.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Polls in a row before a self-waking future yields to the runtime.
pub const MAX_REPOLLS: usize = 64;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN_WHILE_POLLING: u8 = 2;

struct Shared {
    state: AtomicU8,
    /// The runtime's waker of the latest poll, for wakes from outside it.
    outer: Mutex<Option<Waker>>,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // During our own poll: remember it, the poll loop runs again.
        if self
            .state
            .compare_exchange(POLLING, WOKEN_WHILE_POLLING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
        if self.state.load(Ordering::Acquire) == WOKEN_WHILE_POLLING {
            return;
        }
        if let Some(w) = self.outer.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// See the module docs.
pub struct Repoll<F, A> {
    inner: Pin<Box<F>>,
    shared: Arc<Shared>,
    waker: Waker,
    alone: A,
}

impl<F: Future, A: Fn() -> bool> Repoll<F, A> {
    /// `alone` says whether polling again at once is fair to others.
    pub fn new(inner: F, alone: A) -> Self {
        let shared = Arc::new(Shared { state: AtomicU8::new(IDLE), outer: Mutex::new(None) });
        let waker = Waker::from(shared.clone());
        Repoll { inner: Box::pin(inner), shared, waker, alone }
    }
}

impl<F: Future, A: Fn() -> bool + Unpin> Future for Repoll<F, A> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        {
            let mut outer = this.shared.outer.lock().unwrap();
            if !outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *outer = Some(cx.waker().clone());
            }
        }
        let mut inner_cx = Context::from_waker(&this.waker);
        for _ in 0..MAX_REPOLLS {
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(out) = this.inner.as_mut().poll(&mut inner_cx) {
                this.shared.state.store(IDLE, Ordering::Release);
                return Poll::Ready(out);
            }
            // Not woken meanwhile: wait for a wake from outside.
            if this
                .shared
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
            if !(this.alone)() {
                break;
            }
        }
        // Woken again with others waiting, or after MAX_REPOLLS polls: let others run.
        this.shared.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself `n` times before it is ready, counting its polls.
    struct SelfWaking {
        left: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn self_wakes_during_a_poll_are_polled_again_without_the_runtime() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut fut = Box::pin(Repoll::new(SelfWaking { left: 10, polls: polls.clone() }, || true));
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Ready(()));
        assert_eq!(polls.load(Ordering::SeqCst), 11);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "the runtime was never woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_after_the_cap() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut fut = Box::pin(Repoll::new(SelfWaking { left: MAX_REPOLLS + 5, polls: polls.clone() }, || true));
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Pending);
        assert_eq!(polls.load(Ordering::SeqCst), MAX_REPOLLS);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "it asked the runtime to poll it again");
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Ready(()));
    }

    #[test]
    fn with_others_waiting_a_self_wake_goes_to_the_runtime() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut fut = Box::pin(Repoll::new(SelfWaking { left: 2, polls: polls.clone() }, || false));
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Pending);
        assert_eq!((polls.load(Ordering::SeqCst), counter.0.load(Ordering::SeqCst)), (1, 1));
    }

    #[tokio::test]
    async fn wakes_from_outside_reach_the_runtime() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let handle = tokio::spawn(Repoll::new(async move { rx.await.unwrap() + 1 }, || true));
        tokio::task::yield_now().await;
        tx.send(41).unwrap();
        assert_eq!(handle.await.unwrap(), 42);
    }
}
