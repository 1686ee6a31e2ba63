//! `talosctl dashboard`: a terminal UI with each node's overview, logs and live metrics, after
//! upstream's. Nodes come from `-n` or the context; ← → (or h/l, [ and ]) switch the node,
//! F1/F2/F3 the screen (Summary, Monitor, Network), ↑ ↓ j k, Ctrl-d/u (half page) and
//! Ctrl-f/b (page) scroll the log or the process table, q or Ctrl-C quit.
//!
//! Data comes from per-node, per-kind fetchers on tokio tasks ([`fetch`]); the screen is drawn
//! from what they stored last ([`view`]), on a key, on new data (at most every
//! [`MIN_REDRAW`]) and once a second, so a slow or dead node never stalls the screen: its
//! errors show in the header.
//!
//! Limits: upstream's F3 on talosctl is a resource explorer; here F3 is the network screen
//! (links, addresses, routes). No Kubernetes column, no disk sparkline, no mouse.

mod data;
mod fetch;
mod view;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use self::fetch::Shared;
use self::view::{Screen, View};
use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::humanize::parse_go_duration;

/// The shortest time between two redraws caused by new data.
const MIN_REDRAW: Duration = Duration::from_millis(250);

/// How often the screen is redrawn without news (the spinner and the uptime move).
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Interval between updates
    #[arg(short = 'd', long = "update-interval", default_value = "3s", value_parser = interval)]
    pub update_interval: Duration,
}

fn interval(text: &str) -> anyhow::Result<Duration> {
    let interval = parse_go_duration(text)?;
    anyhow::ensure!(
        interval >= Duration::from_millis(100),
        "the update interval must be at least 100ms"
    );
    Ok(interval)
}

pub fn run(args: DashboardArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdout().is_terminal() && std::io::stdin().is_terminal(),
        "the dashboard needs a terminal on standard input and output"
    );
    block_on(async {
        let session = Session::open(global).await?;
        let targets: Vec<_> = session
            .targets()
            .iter()
            .flat_map(|target| target.per_node())
            .collect();
        let nodes: Vec<String> = targets.iter().map(|t| t.label()).collect();
        let shared: Vec<Shared> = nodes.iter().map(|_| Shared::default()).collect();
        let changed = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        for (target, node) in targets.into_iter().zip(&shared) {
            fetch::spawn(
                &mut tasks,
                target,
                node.clone(),
                args.update_interval,
                changed.clone(),
            );
        }
        let mut terminal = ratatui::try_init().context("setting up the terminal")?;
        let result = ui(&mut terminal, &nodes, &shared, &changed).await;
        let restored = ratatui::try_restore().context("restoring the terminal");
        tasks.abort_all();
        result.and(restored)
    })
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Quit,
    Show(Screen),
    PreviousNode,
    NextNode,
    /// Scrolls the log (Summary) or the process table (Monitor).
    Scroll(Scroll),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scroll {
    Up(Amount),
    Down(Amount),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Amount {
    Line,
    HalfPage,
    Page,
}

fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if control => Action::Quit,
        KeyCode::Char('d') if control => Action::Scroll(Scroll::Down(Amount::HalfPage)),
        KeyCode::Char('u') if control => Action::Scroll(Scroll::Up(Amount::HalfPage)),
        KeyCode::Char('f') if control => Action::Scroll(Scroll::Down(Amount::Page)),
        KeyCode::Char('b') if control => Action::Scroll(Scroll::Up(Amount::Page)),
        _ if control => return None,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::F(n @ 1..=3) => Action::Show(Screen::ALL[usize::from(n - 1)]),
        KeyCode::Left | KeyCode::Char('h' | '[') => Action::PreviousNode,
        KeyCode::Right | KeyCode::Char('l' | ']') => Action::NextNode,
        KeyCode::Up | KeyCode::Char('k') => Action::Scroll(Scroll::Up(Amount::Line)),
        KeyCode::Down | KeyCode::Char('j') => Action::Scroll(Scroll::Down(Amount::Line)),
        KeyCode::PageUp => Action::Scroll(Scroll::Up(Amount::Page)),
        KeyCode::PageDown => Action::Scroll(Scroll::Down(Amount::Page)),
        _ => return None,
    })
}

/// Where the user is: node, screen, scroll positions.
#[derive(Debug)]
struct Ui {
    selected: usize,
    node_count: usize,
    screen: Screen,
    log_scroll: usize,
    process_scroll: usize,
    spinner: usize,
}

impl Ui {
    /// Applies `action`; false when it asks to quit. `page` is the screen's height in rows.
    fn handle(&mut self, action: Action, page: usize) -> bool {
        match action {
            Action::Quit => return false,
            Action::Show(screen) => self.screen = screen,
            Action::PreviousNode | Action::NextNode => {
                let count = self.node_count.max(1);
                self.selected = if action == Action::NextNode {
                    (self.selected + 1) % count
                } else {
                    (self.selected + count - 1) % count
                };
                self.log_scroll = 0;
                self.process_scroll = 0;
            }
            Action::Scroll(scroll) => {
                let lines = |amount| match amount {
                    Amount::Line => 1,
                    Amount::HalfPage => (page / 2).max(1),
                    Amount::Page => page.max(1),
                };
                // The log counts back from its newest line, the process table down from its top.
                let (position, towards_older) = match self.screen {
                    Screen::Summary => (&mut self.log_scroll, true),
                    Screen::Monitor => (&mut self.process_scroll, false),
                    Screen::Network => return true,
                };
                let increase = matches!(
                    (scroll, towards_older),
                    (Scroll::Up(_), true) | (Scroll::Down(_), false)
                );
                let (Scroll::Up(amount) | Scroll::Down(amount)) = scroll;
                *position = if increase {
                    position.saturating_add(lines(amount))
                } else {
                    position.saturating_sub(lines(amount))
                };
            }
        }
        true
    }
}

async fn ui(
    terminal: &mut ratatui::DefaultTerminal,
    nodes: &[String],
    shared: &[Shared],
    changed: &Notify,
) -> anyhow::Result<()> {
    let (keys, mut key_events) = mpsc::channel(64);
    // crossterm's reads block: one plain thread reads the terminal for the whole run (it ends
    // with the process).
    std::thread::Builder::new()
        .name("dashboard-input".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                if keys.blocking_send(event).is_err() {
                    break;
                }
            }
        })
        .context("starting the input thread")?;

    let mut ui = Ui {
        selected: 0,
        node_count: nodes.len(),
        screen: Screen::Summary,
        log_scroll: 0,
        process_scroll: 0,
        spinner: 0,
    };
    let mut tick = tokio::time::interval(TICK);
    let mut last_draw = Instant::now();
    loop {
        let node = shared
            .get(ui.selected)
            .map(|node| fetch::lock(node).clone())
            .unwrap_or_default();
        let view = View {
            nodes,
            selected: ui.selected,
            screen: ui.screen,
            log_scroll: ui.log_scroll,
            process_scroll: ui.process_scroll,
            spinner: ui.spinner,
            now: SystemTime::now(),
        };
        terminal
            .draw(|frame| view::draw(frame, &view, &node))
            .context("drawing the dashboard")?;
        last_draw = last_draw.max(Instant::now());

        tokio::select! {
            event = key_events.recv() => match event {
                Some(Event::Key(key)) => {
                    let page = usize::from(terminal.size().map(|s| s.height).unwrap_or(24)) / 2;
                    if let Some(action) = action(key)
                        && !ui.handle(action, page)
                    {
                        return Ok(());
                    }
                }
                Some(_) => {}
                None => anyhow::bail!("the terminal closed"),
            },
            _ = changed.notified() => {
                // Coalesce bursts of news into one redraw.
                tokio::time::sleep_until((last_draw + MIN_REDRAW).into()).await;
            }
            _ = tick.tick() => ui.spinner += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_upstreams_actions() {
        assert_eq!(action(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action(key(KeyCode::F(2))),
            Some(Action::Show(Screen::Monitor))
        );
        assert_eq!(
            action(key(KeyCode::F(3))),
            Some(Action::Show(Screen::Network))
        );
        assert_eq!(action(key(KeyCode::F(4))), None);
        for code in [KeyCode::Left, KeyCode::Char('h'), KeyCode::Char('[')] {
            assert_eq!(action(key(code)), Some(Action::PreviousNode));
        }
        for code in [KeyCode::Right, KeyCode::Char('l'), KeyCode::Char(']')] {
            assert_eq!(action(key(code)), Some(Action::NextNode));
        }
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            None
        );
    }

    #[test]
    fn nodes_wrap_and_scrolling_follows_the_screen() {
        let mut ui = Ui {
            selected: 0,
            node_count: 3,
            screen: Screen::Summary,
            log_scroll: 0,
            process_scroll: 0,
            spinner: 0,
        };
        assert!(ui.handle(Action::PreviousNode, 20));
        assert_eq!(ui.selected, 2);
        assert!(ui.handle(Action::NextNode, 20));
        assert_eq!(ui.selected, 0);
        assert!(ui.handle(Action::Scroll(Scroll::Up(Amount::HalfPage)), 20));
        assert_eq!(ui.log_scroll, 10);
        assert!(ui.handle(Action::Scroll(Scroll::Down(Amount::Page)), 20));
        assert_eq!(ui.log_scroll, 0);
        ui.handle(Action::Show(Screen::Monitor), 20);
        assert!(ui.handle(Action::Scroll(Scroll::Down(Amount::Line)), 20));
        assert_eq!((ui.process_scroll, ui.log_scroll), (1, 0));
        assert!(!ui.handle(Action::Quit, 20));
    }
}
