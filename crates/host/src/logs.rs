//! Component stdout/stderr, as `spin up` handles them: written to the
//! console and appended to `<state dir>/logs/<component>_stdout.txt` and
//! `<component>_stderr.txt`; and the host's own one line per request
//! ([`request_line`]), written to stderr by a writer thread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    Stdout,
    Stderr,
}

/// One of a component's output streams: the console plus its log file.
#[derive(Clone)]
pub struct ComponentOutput {
    console: Console,
    file: Option<Arc<Mutex<File>>>,
}

impl ComponentOutput {
    /// Opens (appending) the log file; without one, output goes to the console only.
    pub fn open(logs_dir: &Path, component: &str, console: Console) -> ComponentOutput {
        let name = match console {
            Console::Stdout => format!("{component}_stdout.txt"),
            Console::Stderr => format!("{component}_stderr.txt"),
        };
        let file = std::fs::create_dir_all(logs_dir)
            .and_then(|_| OpenOptions::new().create(true).append(true).open(logs_dir.join(&name)))
            .map_err(|e| eprintln!("warning: cannot open log file {}: {e}", logs_dir.join(&name).display()))
            .ok()
            .map(|f| Arc::new(Mutex::new(f)));
        ComponentOutput { console, file }
    }

    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        match self.console {
            Console::Stdout => std::io::stdout().write_all(buf)?,
            Console::Stderr => std::io::stderr().write_all(buf)?,
        }
        if let Some(f) = &self.file {
            f.lock().unwrap().write_all(buf)?;
        }
        Ok(())
    }
}

impl IsTerminal for ComponentOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Writes are small and go to a console and an appended file, so they are
/// done at once rather than on a blocking thread.
impl AsyncWrite for ComponentOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_all(buf).map(|_| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How long the request-log writer gathers lines before one write.
const REQUEST_LOG_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

enum LogMessage {
    Line(String),
    Flush(SyncSender<()>),
}

static REQUEST_LOG: OnceLock<Mutex<Sender<LogMessage>>> = OnceLock::new();

fn request_log() -> &'static Mutex<Sender<LogMessage>> {
    REQUEST_LOG.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || write_request_log(rx))
            .expect("cannot start the request-log thread");
        Mutex::new(tx)
    })
}

/// Writes what has queued up in one `write` to stderr: a request pays for
/// a channel send instead of a write system call under the stderr lock
/// (measured ~4% of the host's CPU at 7,000 requests/s with a log file).
/// After the first line of a burst the thread waits [`REQUEST_LOG_WINDOW`]
/// before writing, so under load it wakes ~100 times a second rather than
/// once per request (each wake is a context switch on the cores serving).
fn write_request_log(rx: Receiver<LogMessage>) {
    let mut buf = String::new();
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        if matches!(first, LogMessage::Line(_)) {
            std::thread::sleep(REQUEST_LOG_WINDOW);
        }
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                LogMessage::Line(l) => {
                    buf.push_str(&l);
                    buf.push('\n');
                }
                LogMessage::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let _ = std::io::stderr().write_all(buf.as_bytes());
        buf.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Queues one request log line (no newline) for stderr, in order.
pub fn request_line(line: String) {
    let sent = request_log().lock().unwrap().send(LogMessage::Line(line));
    if let Err(unsent) = sent {
        // The writer is gone (it cannot normally end): write directly.
        if let LogMessage::Line(l) = unsent.0 {
            eprintln!("{l}");
        }
    }
}

/// Waits until every queued request line is written (at shutdown).
pub fn flush_request_log() {
    let Some(log) = REQUEST_LOG.get() else { return };
    let (ack, done) = std::sync::mpsc::sync_channel(1);
    if log.lock().unwrap().send(LogMessage::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(std::time::Duration::from_secs(5));
    }
}
