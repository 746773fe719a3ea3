//! Component stdout/stderr, as `spin up` handles them: written to the
//! console and appended to `<state dir>/logs/<component>_stdout.txt` and
//! `<component>_stderr.txt`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
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
