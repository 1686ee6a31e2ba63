//! A spinner on the terminal while a step of `cluster create` runs (the node's name, what it
//! waits for, the seconds so far). Off a terminal it draws nothing: there, progress is the plain
//! line each step prints when it ends.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Spins until dropped, then clears its line.
#[derive(Debug)]
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub fn start(label: impl Into<String>) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stdout().is_terminal().then(|| {
            let (stop, label) = (Arc::clone(&stop), label.into());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut out = std::io::stdout();
                for frame in FRAMES.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = write!(out, "\r\x1b[2K{}", line(*frame, &label, started.elapsed()));
                    let _ = out.flush();
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = write!(out, "\r\x1b[2K");
                let _ = out.flush();
            })
        });
        Spinner { stop, thread }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn line(frame: char, label: &str, elapsed: Duration) -> String {
    format!("{frame} {label} ({} s)", elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_step_and_its_seconds() {
        assert_eq!(
            line('⠋', "demo-worker-1: booting", Duration::from_millis(12_400)),
            "⠋ demo-worker-1: booting (12 s)"
        );
    }

    #[test]
    fn off_a_terminal_nothing_spins() {
        // cargo test captures stdout: not a terminal.
        let spinner = Spinner::start("nothing");
        assert!(spinner.thread.is_none());
    }
}
