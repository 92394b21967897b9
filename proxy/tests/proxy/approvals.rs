//! The store's promises about manager approvals (migration 0011), on both back ends: roles,
//! managers, PIN lockouts counted on the store's clock, one-use approvals that exactly one
//! of two racing uses gets, and the audit row written with each use.

use std::sync::Arc;
use std::time::Duration;

use paycode_api::{ApprovalAction, Role};
use paycode_proxy::store::{
    ApprovalUse, LockoutPolicy, ManagerRecord, Millis, NewApproval, PinCheck, Store, StoreError,
    StoreRecord,
};

use crate::helpers::{Backend, TestDatabase, new_store};

conformance!(
    terminals_get_a_role_and_keep_it,
    managers_are_added_listed_re_pinned_and_removed,
    pin_failures_lock_on_the_store_clock_and_a_success_resets,
    racing_pin_checks_are_each_counted,
    a_one_use_approval_works_once_for_its_terminal_action_and_store,
    racing_uses_of_one_approval_let_exactly_one_through,
    a_window_approval_works_until_it_expires_and_each_use_is_audited,
    a_removed_manager_approves_nothing,
);

const POLICY: LockoutPolicy = LockoutPolicy {
    max_failures: 3,
    lockout: Duration::from_millis(1500),
};

fn manager(name: &str, store_id: Option<&str>) -> ManagerRecord {
    ManagerRecord {
        id: format!("mgr-{name}"),
        name: name.to_owned(),
        store_id: store_id.map(str::to_owned),
        pin_hash: format!("$argon2id$hash-of-{name}"),
        failed_attempts: 0,
        locked_until: None,
        created_at: Millis::now(),
        removed_at: None,
    }
}

fn approval(token: &str, terminal_id: &str, manager_id: &str, once: bool) -> NewApproval {
    NewApproval {
        token_hash: token.to_owned(),
        terminal_id: terminal_id.to_owned(),
        manager_id: manager_id.to_owned(),
        action: ApprovalAction::Refund,
        reason: Some("顾客退货".to_owned()),
        once,
        ttl: Duration::from_secs(60),
    }
}

fn use_of<'a>(token: &'a str, terminal_id: &'a str, target: &'a str) -> ApprovalUse<'a> {
    ApprovalUse {
        token_hash: token,
        terminal_id,
        action: ApprovalAction::Refund,
        target,
        store_id: "default",
        reason: None,
    }
}

/// A store with a terminal `counter-1` and a manager `店长` of the default store.
async fn with_terminal_and_manager(backend: &Backend) -> (Arc<dyn Store>, String, TestDatabase) {
    let (store, database) = new_store(backend).await;
    let terminal = store
        .add_terminal("counter-1", "hash-1", "default")
        .await
        .unwrap();
    store
        .add_manager(&manager("店长", Some("default")))
        .await
        .unwrap();
    (store, terminal.id, database)
}

async fn terminals_get_a_role_and_keep_it(backend: Backend) {
    let (store, _database) = new_store(&backend).await;
    let added = store
        .add_terminal("back-office", "hash-b", "default")
        .await
        .unwrap();
    assert_eq!(
        added.role,
        Role::Cashier,
        "a terminal is a cashier by default"
    );

    let changed = store
        .set_terminal_role("back-office", Role::Owner)
        .await
        .unwrap();
    let unknown = store.set_terminal_role("nobody", Role::Manager).await;

    assert_eq!(changed.role, Role::Owner);
    assert_eq!(
        store
            .terminal_by_token_hash("hash-b")
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Owner
    );
    assert_eq!(store.list_terminals().await.unwrap()[0].role, Role::Owner);
    assert!(
        matches!(
            unknown,
            Err(StoreError::NotFound {
                entity: "terminal",
                ..
            })
        ),
        "{unknown:?}"
    );
}

async fn managers_are_added_listed_re_pinned_and_removed(backend: Backend) {
    // Arrange
    let (store, _database) = new_store(&backend).await;

    // Act
    let added = store
        .add_manager(&manager("店长", Some("default")))
        .await
        .unwrap();
    let owner = store.add_manager(&manager("owner", None)).await.unwrap();
    let mut same_name = manager("店长", None);
    same_name.id = "mgr-other".to_owned();
    let duplicate = store.add_manager(&same_name).await;
    let unknown_store = store
        .add_manager(&manager("ghost", Some("no-such-store")))
        .await;
    let re_pinned = store
        .set_manager_pin("店长", "$argon2id$new")
        .await
        .unwrap();
    let removed = store.remove_manager("owner").await.unwrap();
    let removed_twice = store.remove_manager("owner").await;
    let mut again = manager("owner", None);
    again.id = "mgr-owner-2".to_owned();
    let readded = store.add_manager(&again).await;

    // Assert
    assert_eq!(added.store_id.as_deref(), Some("default"));
    assert_eq!(owner.store_id, None);
    assert!(
        matches!(
            duplicate,
            Err(StoreError::AlreadyExists {
                entity: "manager",
                ..
            })
        ),
        "{duplicate:?}"
    );
    assert!(
        matches!(
            unknown_store,
            Err(StoreError::NotFound {
                entity: "store",
                ..
            })
        ),
        "{unknown_store:?}"
    );
    assert_eq!(re_pinned.pin_hash, "$argon2id$new");
    assert!(removed.removed_at.is_some());
    assert!(
        matches!(
            removed_twice,
            Err(StoreError::NotFound {
                entity: "manager",
                ..
            })
        ),
        "{removed_twice:?}"
    );
    assert!(
        readded.is_ok(),
        "a removed manager's name can be given again"
    );
    assert_eq!(
        store.manager_by_name("owner").await.unwrap().unwrap().id,
        "mgr-owner-2"
    );
    let names: Vec<_> = store
        .list_managers()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.removed_at.is_some()))
        .collect();
    assert_eq!(
        names,
        [
            ("店长".to_owned(), false),
            ("owner".to_owned(), true),
            ("owner".to_owned(), false)
        ]
    );
}

async fn pin_failures_lock_on_the_store_clock_and_a_success_resets(backend: Backend) {
    // Arrange
    let (store, _terminal, _database) = with_terminal_and_manager(&backend).await;
    let id = "mgr-店长";

    // Act: two failures, a success (resets), then three failures in a row.
    let first = store.record_pin_check(id, false, POLICY).await.unwrap();
    store.record_pin_check(id, false, POLICY).await.unwrap();
    let reset = store.record_pin_check(id, true, POLICY).await.unwrap();
    store.record_pin_check(id, false, POLICY).await.unwrap();
    store.record_pin_check(id, false, POLICY).await.unwrap();
    let before = store.clock().await.unwrap();
    let locking = store.record_pin_check(id, false, POLICY).await.unwrap();
    let right_but_locked = store.record_pin_check(id, true, POLICY).await.unwrap();
    tokio::time::sleep(POLICY.lockout + Duration::from_millis(100)).await;
    let after_lockout = store.record_pin_check(id, true, POLICY).await.unwrap();

    // Assert
    assert_eq!(first, PinCheck::Incorrect { remaining: 2 });
    assert_eq!(reset, PinCheck::Accepted);
    let PinCheck::Locked { until, now } = locking else {
        panic!("the third failure in a row locks: {locking:?}");
    };
    assert!(now >= before, "the lock is measured on the store's clock");
    assert_eq!(until.0 - now.0, 1500);
    assert!(
        matches!(right_but_locked, PinCheck::Locked { until: same, .. } if same == until),
        "{right_but_locked:?}"
    );
    assert_eq!(after_lockout, PinCheck::Accepted);
    let stored = store.manager_by_name("店长").await.unwrap().unwrap();
    assert_eq!((stored.failed_attempts, stored.locked_until), (0, None));
}

async fn racing_pin_checks_are_each_counted(backend: Backend) {
    // Arrange
    let (store, _terminal, _database) = with_terminal_and_manager(&backend).await;
    let policy = LockoutPolicy {
        max_failures: 100,
        lockout: Duration::from_secs(60),
    };

    // Act: 12 wrong PINs at once.
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_pin_check("mgr-店长", false, policy).await })
        })
        .collect();
    let mut remaining = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            PinCheck::Incorrect { remaining: left } => remaining.push(left),
            other => panic!("{other:?}"),
        }
    }

    // Assert: no failure was lost to a race.
    remaining.sort_unstable();
    assert_eq!(remaining, (88..100).collect::<Vec<u32>>());
    let stored = store.manager_by_name("店长").await.unwrap().unwrap();
    assert_eq!(stored.failed_attempts, 12);
}

async fn a_one_use_approval_works_once_for_its_terminal_action_and_store(backend: Backend) {
    // Arrange
    let (store, terminal, _database) = with_terminal_and_manager(&backend).await;
    let other = store
        .add_terminal("counter-2", "hash-2", "default")
        .await
        .unwrap();
    store
        .add_store(&StoreRecord {
            id: "east".to_owned(),
            name: "shop-east".to_owned(),
            account: "default".to_owned(),
            sub_mch_id: None,
            sub_appid: None,
            address: None,
            created_at: Millis::now(),
            disabled_at: None,
        })
        .await
        .unwrap();
    let before = store.clock().await.unwrap();
    let expires_at = store
        .insert_approval(&approval("tok-1", &terminal, "mgr-店长", true))
        .await
        .unwrap();

    // Act
    let wrong_terminal = store
        .use_approval(use_of("tok-1", &other.id, "pay_1"))
        .await;
    let wrong_action = store
        .use_approval(ApprovalUse {
            action: ApprovalAction::Books,
            ..use_of("tok-1", &terminal, "pay_1")
        })
        .await;
    let wrong_store = store
        .use_approval(ApprovalUse {
            store_id: "east",
            ..use_of("tok-1", &terminal, "pay_1")
        })
        .await;
    let unknown = store
        .use_approval(use_of("tok-9", &terminal, "pay_1"))
        .await;
    let used = store
        .use_approval(use_of("tok-1", &terminal, "pay_1"))
        .await;
    let again = store
        .use_approval(use_of("tok-1", &terminal, "pay_1"))
        .await;

    // Assert
    assert!(
        expires_at.0 - before.0 >= 60_000,
        "{expires_at:?} {before:?}"
    );
    for refused in [wrong_terminal, wrong_action, wrong_store, unknown, again] {
        assert!(matches!(refused, Ok(None)), "{refused:?}");
    }
    let (audit, manager_store) = used.unwrap().expect("the first right use works");
    assert_eq!(manager_store.as_deref(), Some("default"));
    assert_eq!(audit.manager_name, "店长");
    assert_eq!(audit.terminal_id, terminal);
    assert_eq!(audit.action, ApprovalAction::Refund);
    assert_eq!(audit.target, "pay_1");
    assert_eq!(audit.reason.as_deref(), Some("顾客退货"));
    assert_eq!(store.approved_actions(before).await.unwrap(), vec![audit]);
}

async fn racing_uses_of_one_approval_let_exactly_one_through(backend: Backend) {
    // Arrange
    let (store, terminal, _database) = with_terminal_and_manager(&backend).await;
    store
        .insert_approval(&approval("tok-race", &terminal, "mgr-店长", true))
        .await
        .unwrap();

    // Act
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            let terminal = terminal.clone();
            tokio::spawn(async move {
                let target = format!("pay_{n}");
                store
                    .use_approval(use_of("tok-race", &terminal, &target))
                    .await
            })
        })
        .collect();
    let mut used = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            used += 1;
        }
    }

    // Assert
    assert_eq!(used, 1, "exactly one use of a one-use approval");
    assert_eq!(store.approved_actions(Millis(0)).await.unwrap().len(), 1);
}

async fn a_window_approval_works_until_it_expires_and_each_use_is_audited(backend: Backend) {
    // Arrange
    let (store, terminal, _database) = with_terminal_and_manager(&backend).await;
    let mut window = approval("tok-window", &terminal, "mgr-店长", false);
    window.ttl = Duration::from_millis(800);
    store.insert_approval(&window).await.unwrap();

    // Act
    let first = store
        .use_approval(use_of("tok-window", &terminal, "pay_1"))
        .await
        .unwrap();
    let second = store
        .use_approval(use_of("tok-window", &terminal, "pay_2"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let expired = store
        .use_approval(use_of("tok-window", &terminal, "pay_3"))
        .await
        .unwrap();

    // Assert
    assert!(first.is_some() && second.is_some());
    assert!(expired.is_none(), "an expired approval works no more");
    let targets: Vec<_> = store
        .approved_actions(Millis(0))
        .await
        .unwrap()
        .into_iter()
        .map(|action| action.target)
        .collect();
    assert_eq!(targets, ["pay_1", "pay_2"]);
}

async fn a_removed_manager_approves_nothing(backend: Backend) {
    let (store, terminal, _database) = with_terminal_and_manager(&backend).await;
    store
        .insert_approval(&approval("tok-gone", &terminal, "mgr-店长", true))
        .await
        .unwrap();
    store.remove_manager("店长").await.unwrap();

    let used = store
        .use_approval(use_of("tok-gone", &terminal, "pay_1"))
        .await
        .unwrap();
    let checked = store.record_pin_check("mgr-店长", true, POLICY).await;

    assert!(used.is_none());
    assert!(
        matches!(
            checked,
            Err(StoreError::NotFound {
                entity: "manager",
                ..
            })
        ),
        "{checked:?}"
    );
}
