//! The runtime event bus behind `MachineService.Events`.
//!
//! One ring buffer (1000 events unless configured otherwise) holds the latest events, each an
//! [`Event`] with an [xid](Xid) id and its payload packed in an `Any` whose type URL is
//! `talos/runtime/machine.<Name>` (see [`RuntimeEvent`]). Publishing is synchronous and never
//! waits for subscribers: the ring itself is the only buffer, and each [`Subscription`] keeps its
//! own cursor into it. A subscriber that falls more than the capacity behind gets
//! [`EventsError::Lagged`] once, then continues from the oldest buffered event.
//!
//! A subscription first yields the empty "hello" event (an `Any` with an empty type URL, which
//! tells clients the watch is established), then the requested history, then live events. History
//! and live events come from the same cursor, so there is no gap and no duplicate between them.
//!
//! Limits: events live in memory only; with an actor filter, `tail_events` counts events before
//! the filter is applied (as upstream does).

mod payload;
mod xid;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::Stream;
use prost_types::Any;
use proto::machine::{Event, EventsRequest};
use tokio::sync::watch;

pub use payload::{RuntimeEvent, TYPE_URL_PREFIX};
pub use xid::{Xid, XidGenerator, XidParseError};

/// How many events the bus keeps unless told otherwise (as upstream machined).
pub const DEFAULT_CAPACITY: usize = 1000;

/// What went wrong subscribing to or reading from the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// More than one of the three tail options was set.
    #[error("only one of tail_events, tail_id and tail_seconds may be set (got {fields})")]
    ConflictingTail {
        /// The fields that were set, comma separated.
        fields: String,
    },
    /// `tail_id` is not an xid.
    #[error("tail_id: {0}")]
    InvalidTailId(#[from] XidParseError),
    /// `tail_id` is a valid xid but no buffered event has it.
    #[error("tail_id {id:?} is not in the event buffer")]
    UnknownTailId {
        /// The requested id.
        id: String,
    },
    /// The subscriber fell so far behind that events it had not read were overwritten.
    #[error("event subscriber fell behind: {missed} events were dropped")]
    Lagged {
        /// How many events it missed.
        missed: u64,
    },
}

/// Which past events a new subscription starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// None: live events only.
    Nothing,
    /// The last N buffered events.
    Last(usize),
    /// Everything buffered.
    All,
    /// The events published strictly after the event with this id.
    After(Xid),
    /// The events published in the last N seconds.
    Since(Duration),
}

/// What a subscriber asked for: `EventsRequest` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// History to send before live events.
    pub tail: Tail,
    /// When set, only events with this actor id.
    pub actor_id: Option<String>,
}

impl SubscribeOptions {
    /// Validates an `EventsRequest`: at most one of `tail_events` (−1 or any negative = all),
    /// `tail_id` and `tail_seconds` may be set; `tail_id` must be an xid.
    pub fn from_request(request: &EventsRequest) -> Result<Self, EventsError> {
        let mut set = Vec::new();
        if request.tail_events != 0 {
            set.push("tail_events");
        }
        if !request.tail_id.is_empty() {
            set.push("tail_id");
        }
        if request.tail_seconds != 0 {
            set.push("tail_seconds");
        }
        if set.len() > 1 {
            return Err(EventsError::ConflictingTail {
                fields: set.join(", "),
            });
        }
        let tail = if request.tail_events < 0 {
            Tail::All
        } else if request.tail_events > 0 {
            Tail::Last(request.tail_events as usize)
        } else if !request.tail_id.is_empty() {
            Tail::After(request.tail_id.parse()?)
        } else if request.tail_seconds > 0 {
            Tail::Since(Duration::from_secs(request.tail_seconds as u64))
        } else {
            Tail::Nothing
        };
        let actor_id = Some(request.with_actor_id.clone()).filter(|actor| !actor.is_empty());
        Ok(Self { tail, actor_id })
    }
}

/// The event bus: cheap to clone, shared by every producer and the `Events` handler.
#[derive(Debug, Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ring: Mutex<Ring>,
    /// Bumped after every publish; subscribers wait on it when they have read everything.
    published: watch::Sender<u64>,
    ids: XidGenerator,
}

#[derive(Debug)]
struct Ring {
    capacity: usize,
    /// Sequence number of `entries[0]`; sequence numbers never repeat.
    first_seq: u64,
    entries: VecDeque<Stored>,
}

#[derive(Debug)]
struct Stored {
    xid: Xid,
    at: SystemTime,
    event: Event,
}

impl Ring {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Stored> {
        let index = seq.checked_sub(self.first_seq)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// The sequence number a subscription with `tail` starts reading at.
    fn start_seq(&self, tail: Tail, now: SystemTime) -> Result<u64, EventsError> {
        let end = self.end_seq();
        Ok(match tail {
            Tail::Nothing => end,
            Tail::All => self.first_seq,
            Tail::Last(count) => end.saturating_sub(count as u64).max(self.first_seq),
            Tail::After(id) => {
                let position = self
                    .entries
                    .iter()
                    .rposition(|stored| stored.xid == id)
                    .ok_or_else(|| EventsError::UnknownTailId { id: id.to_string() })?;
                self.first_seq + position as u64 + 1
            }
            Tail::Since(window) => {
                let threshold = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
                let newer = self
                    .entries
                    .iter()
                    .rev()
                    .take_while(|stored| stored.at >= threshold)
                    .count();
                end - newer as u64
            }
        })
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl EventBus {
    /// A bus that keeps the latest `capacity` events (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    capacity,
                    first_seq: 0,
                    entries: VecDeque::with_capacity(capacity),
                }),
                published: watch::Sender::new(0),
                ids: XidGenerator::new(),
            }),
        }
    }

    /// Publishes `payload` (tagged with `actor_id` when given) and returns the new event's id.
    /// Never blocks on subscribers.
    pub fn publish<P: RuntimeEvent>(&self, payload: &P, actor_id: Option<&str>) -> Xid {
        let data = Any {
            type_url: P::type_url(),
            value: payload.encode_to_vec(),
        };
        let at = SystemTime::now();
        let xid = {
            let mut ring = lock(&self.shared.ring);
            // Made under the lock so that ids increase in buffer order.
            let xid = self.shared.ids.generate_at(at);
            let event = Event {
                metadata: None,
                data: Some(data),
                id: xid.to_string(),
                actor_id: actor_id.unwrap_or_default().to_owned(),
            };
            if ring.entries.len() == ring.capacity {
                ring.entries.pop_front();
                ring.first_seq += 1;
            }
            ring.entries.push_back(Stored { xid, at, event });
            xid
        };
        self.shared.published.send_modify(|count| *count += 1);
        xid
    }

    /// Starts a subscription (see the module docs for what it yields).
    pub fn subscribe(&self, options: SubscribeOptions) -> Result<Subscription, EventsError> {
        let changes = self.shared.published.subscribe();
        let cursor = lock(&self.shared.ring).start_seq(options.tail, SystemTime::now())?;
        Ok(Subscription {
            shared: Arc::clone(&self.shared),
            cursor,
            actor_id: options.actor_id,
            hello_sent: false,
            changes,
        })
    }
}

fn lock(ring: &Mutex<Ring>) -> MutexGuard<'_, Ring> {
    // A panic while holding the lock cannot leave the ring half-updated in a way readers care
    // about, so a poisoned lock is still used.
    ring.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The empty event every subscription starts with.
pub fn hello_event() -> Event {
    Event {
        metadata: None,
        data: Some(Any::default()),
        id: String::new(),
        actor_id: String::new(),
    }
}

/// One subscriber's position in the bus.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    cursor: u64,
    actor_id: Option<String>,
    hello_sent: bool,
    changes: watch::Receiver<u64>,
}

impl Subscription {
    /// The next event: the hello event first, then history, then live events as they come.
    /// Returns [`EventsError::Lagged`] once when events were lost; reading may continue.
    pub async fn recv(&mut self) -> Result<Event, EventsError> {
        if !self.hello_sent {
            self.hello_sent = true;
            return Ok(hello_event());
        }
        loop {
            // Mark the current publish count as seen before looking, so that a publish after
            // the look wakes `changed` below.
            self.changes.borrow_and_update();
            if let Some(next) = self.next_buffered() {
                return next;
            }
            if self.changes.changed().await.is_err() {
                // The sender lives in `shared`, which this subscription holds: unreachable, but
                // waiting forever is the right behaviour for a bus that can no longer publish.
                std::future::pending::<()>().await;
            }
        }
    }

    fn next_buffered(&mut self) -> Option<Result<Event, EventsError>> {
        let ring = lock(&self.shared.ring);
        if self.cursor < ring.first_seq {
            let missed = ring.first_seq - self.cursor;
            self.cursor = ring.first_seq;
            return Some(Err(EventsError::Lagged { missed }));
        }
        while let Some(stored) = ring.get(self.cursor) {
            self.cursor += 1;
            let wanted = self
                .actor_id
                .as_deref()
                .is_none_or(|actor| stored.event.actor_id == actor);
            if wanted {
                return Some(Ok(stored.event.clone()));
            }
        }
        None
    }

    /// The subscription as an endless stream (for a gRPC server-streaming response).
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, EventsError>> + Send + 'static {
        futures_util::stream::unfold(self, |mut subscription| async move {
            let next = subscription.recv().await;
            Some((next, subscription))
        })
    }
}
