//! The runtime event bus: ids, history selection, filters, ordering and lag.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::Duration;

use machined::events::{
    EventBus, EventsError, RuntimeEvent, SubscribeOptions, Subscription, Tail, Xid,
};
use proto::machine::{EventsRequest, TaskEvent, task_event};

const WAIT: Duration = Duration::from_secs(5);

fn task(name: &str) -> TaskEvent {
    TaskEvent {
        task: name.to_owned(),
        action: task_event::Action::Start as i32,
    }
}

fn subscribe(bus: &EventBus, request: EventsRequest) -> Subscription {
    bus.subscribe(SubscribeOptions::from_request(&request).unwrap())
        .unwrap()
}

/// Receives the hello event and checks it is empty.
async fn expect_hello(subscription: &mut Subscription) {
    let hello = tokio::time::timeout(WAIT, subscription.recv())
        .await
        .unwrap()
        .unwrap();
    let data = hello.data.expect("the hello event carries an empty Any");
    assert_eq!(data.type_url, "");
    assert!(data.value.is_empty());
    assert_eq!(hello.id, "");
}

/// The task names of the next `count` events.
async fn next_tasks(subscription: &mut Subscription, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..count {
        let event = tokio::time::timeout(WAIT, subscription.recv())
            .await
            .expect("an event within the wait")
            .unwrap();
        names.push(TaskEvent::from_event(&event).expect("a TaskEvent").task);
    }
    names
}

/// Nothing arrives within a short wait.
async fn assert_quiet(subscription: &mut Subscription) {
    let next = tokio::time::timeout(Duration::from_millis(100), subscription.recv()).await;
    assert!(next.is_err(), "unexpected event: {next:?}");
}

#[test]
fn xids_are_20_base32hex_characters_and_increase() {
    let bus = EventBus::default();
    let ids: Vec<Xid> = (0..100)
        .map(|i| bus.publish(&task(&i.to_string()), None))
        .collect();
    for id in &ids {
        let text = id.to_string();
        assert_eq!(text.len(), 20, "{text}");
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'v').contains(&c)),
            "{text}"
        );
        assert_eq!(text.parse::<Xid>().unwrap(), *id);
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(
        ids.windows(2)
            .all(|pair| pair[0].to_string() < pair[1].to_string())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(now - ids[0].unix_seconds() <= 1);
}

#[tokio::test]
async fn events_carry_talos_type_urls_ids_and_actors() {
    let bus = EventBus::default();
    let mut subscription = subscribe(&bus, EventsRequest::default());
    expect_hello(&mut subscription).await;
    let id = bus.publish(&task("mountState"), Some("actor-1"));
    let event = subscription.recv().await.unwrap();
    let data = event.data.as_ref().unwrap();
    assert_eq!(data.type_url, "talos/runtime/machine.TaskEvent");
    assert_eq!(event.id, id.to_string());
    assert_eq!(event.actor_id, "actor-1");
    assert!(event.metadata.is_none());
    assert_eq!(TaskEvent::from_event(&event).unwrap(), task("mountState"));
}

#[tokio::test]
async fn hello_comes_first_then_history_then_live() {
    let bus = EventBus::default();
    for name in ["a", "b", "c"] {
        bus.publish(&task(name), None);
    }
    let mut subscription = subscribe(
        &bus,
        EventsRequest {
            tail_events: 2,
            ..Default::default()
        },
    );
    expect_hello(&mut subscription).await;
    assert_eq!(next_tasks(&mut subscription, 2).await, ["b", "c"]);
    assert_quiet(&mut subscription).await;
    bus.publish(&task("d"), None);
    assert_eq!(next_tasks(&mut subscription, 1).await, ["d"]);
}

#[tokio::test]
async fn without_tail_only_live_events_and_minus_one_means_everything() {
    let bus = EventBus::new(3);
    for name in ["a", "b", "c", "d"] {
        bus.publish(&task(name), None);
    }
    let mut live = subscribe(&bus, EventsRequest::default());
    expect_hello(&mut live).await;
    assert_quiet(&mut live).await;

    let mut all = subscribe(
        &bus,
        EventsRequest {
            tail_events: -1,
            ..Default::default()
        },
    );
    expect_hello(&mut all).await;
    // Capacity 3: "a" has been overwritten.
    assert_eq!(next_tasks(&mut all, 3).await, ["b", "c", "d"]);
    assert_quiet(&mut all).await;
}

#[tokio::test]
async fn tail_id_starts_strictly_after_that_event() {
    let bus = EventBus::default();
    let ids: Vec<Xid> = ["a", "b", "c", "d"]
        .iter()
        .map(|name| bus.publish(&task(name), None))
        .collect();
    let mut subscription = subscribe(
        &bus,
        EventsRequest {
            tail_id: ids[1].to_string(),
            ..Default::default()
        },
    );
    expect_hello(&mut subscription).await;
    assert_eq!(next_tasks(&mut subscription, 2).await, ["c", "d"]);
    assert_quiet(&mut subscription).await;

    let unknown = Xid::from_bytes([0; 12]).to_string();
    let options = SubscribeOptions::from_request(&EventsRequest {
        tail_id: unknown.clone(),
        ..Default::default()
    })
    .unwrap();
    match bus.subscribe(options) {
        Err(EventsError::UnknownTailId { id }) => assert_eq!(id, unknown),
        other => panic!("expected UnknownTailId, got {other:?}"),
    }
    let malformed = SubscribeOptions::from_request(&EventsRequest {
        tail_id: "not-an-xid".into(),
        ..Default::default()
    });
    assert!(
        matches!(malformed, Err(EventsError::InvalidTailId(_))),
        "{malformed:?}"
    );
}

#[tokio::test]
async fn tail_seconds_selects_recent_events() {
    let bus = EventBus::default();
    bus.publish(&task("old"), None);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    bus.publish(&task("new"), None);
    let mut subscription = subscribe(
        &bus,
        EventsRequest {
            tail_seconds: 1,
            ..Default::default()
        },
    );
    expect_hello(&mut subscription).await;
    assert_eq!(next_tasks(&mut subscription, 1).await, ["new"]);
    assert_quiet(&mut subscription).await;

    let mut wider = subscribe(
        &bus,
        EventsRequest {
            tail_seconds: 60,
            ..Default::default()
        },
    );
    expect_hello(&mut wider).await;
    assert_eq!(next_tasks(&mut wider, 2).await, ["old", "new"]);
}

#[test]
fn only_one_tail_option_may_be_set() {
    let request = EventsRequest {
        tail_events: 3,
        tail_seconds: 10,
        ..Default::default()
    };
    match SubscribeOptions::from_request(&request) {
        Err(EventsError::ConflictingTail { fields }) => {
            assert_eq!(fields, "tail_events, tail_seconds")
        }
        other => panic!("expected ConflictingTail, got {other:?}"),
    }
    let request = EventsRequest {
        tail_events: -1,
        tail_id: "9m4e2mr0ui3e8a215n4g".into(),
        ..Default::default()
    };
    assert!(SubscribeOptions::from_request(&request).is_err());
    let single = SubscribeOptions::from_request(&EventsRequest {
        tail_seconds: 5,
        with_actor_id: "x".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(single.tail, Tail::Since(Duration::from_secs(5)));
    assert_eq!(single.actor_id.as_deref(), Some("x"));
}

#[tokio::test]
async fn actor_filter_keeps_only_that_actors_events() {
    let bus = EventBus::default();
    bus.publish(&task("mine-1"), Some("me"));
    bus.publish(&task("theirs"), Some("them"));
    bus.publish(&task("anonymous"), None);
    let mut subscription = subscribe(
        &bus,
        EventsRequest {
            tail_events: -1,
            with_actor_id: "me".into(),
            ..Default::default()
        },
    );
    expect_hello(&mut subscription).await;
    assert_eq!(next_tasks(&mut subscription, 1).await, ["mine-1"]);
    bus.publish(&task("theirs-2"), Some("them"));
    bus.publish(&task("mine-2"), Some("me"));
    assert_eq!(next_tasks(&mut subscription, 1).await, ["mine-2"]);
    assert_quiet(&mut subscription).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gap_or_duplicate_between_history_and_live() {
    const TOTAL: usize = 600;
    let bus = EventBus::default();
    let publisher_bus = bus.clone();
    let publisher = std::thread::spawn(move || {
        for index in 0..TOTAL {
            publisher_bus.publish(&task(&index.to_string()), None);
            if index % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    // Subscribe while the publisher runs, so history and live events both occur.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let mut subscription = subscribe(
        &bus,
        EventsRequest {
            tail_events: -1,
            ..Default::default()
        },
    );
    expect_hello(&mut subscription).await;
    let names = next_tasks(&mut subscription, TOTAL).await;
    let expected: Vec<String> = (0..TOTAL).map(|index| index.to_string()).collect();
    assert_eq!(names, expected);
    publisher.join().unwrap();
    assert_quiet(&mut subscription).await;
}

#[tokio::test]
async fn a_slow_subscriber_gets_a_lag_notice_and_the_publisher_never_waits() {
    let bus = EventBus::new(10);
    let mut subscription = subscribe(&bus, EventsRequest::default());
    expect_hello(&mut subscription).await;
    for index in 0..25 {
        bus.publish(&task(&index.to_string()), None);
    }
    match subscription.recv().await {
        Err(EventsError::Lagged { missed }) => assert_eq!(missed, 15),
        other => panic!("expected a lag notice, got {other:?}"),
    }
    let names = next_tasks(&mut subscription, 10).await;
    let expected: Vec<String> = (15..25).map(|index| index.to_string()).collect();
    assert_eq!(names, expected);
}
