//! The leases this engine holds (docs/postgresql.md §4): which payments and refunds it
//! drives, at which epoch (the fence its writes name), the version it last saw of each, and
//! until when, on its monotonic clock, it may still start a WeChat call for them.
//!
//! The store decides who holds what ([`Store::claim_due`](crate::store::Store::claim_due),
//! on the database's clock); this is the engine's local view of its own share. A lease's
//! local end is counted from the moment the claim or renewal query was SENT, plus what the
//! database said was left, so a slow answer only shortens it. On a store with one owner
//! (SQLite) leases never lapse: only the epoch (the fence) matters there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::driver::lock;
use super::schedule::Key;
use crate::store::{HeldLeases, LeaseTerms, Renewal};

/// The lease timings and who this engine is.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The owner recorded on every lease: this run's id (`Instance::run_id`).
    pub owner: String,
    /// Whether other proxies may share the store (PostgreSQL): then work is claimed as it
    /// comes due, leases are renewed, and no WeChat call starts without enough lease left.
    /// Otherwise (SQLite) everything is claimed at start and never lapses.
    pub shared: bool,
    /// How long a claim or renewal holds a row.
    pub duration: Duration,
    /// How often held leases are renewed.
    pub renew_interval: Duration,
    /// The least lease left for a WeChat call to start.
    pub safety_margin: Duration,
    /// How often due work is claimed.
    pub claim_interval: Duration,
}

/// One held lease.
#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: u64,
    version: u64,
    until: Instant,
}

/// The leases held, by key.
#[derive(Debug)]
pub(super) struct Leases {
    pub(super) settings: LeaseSettings,
    held: Mutex<HashMap<Key, Held>>,
}

impl Leases {
    pub(super) fn new(settings: LeaseSettings) -> Leases {
        Leases {
            settings,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The terms of every claim and renewal.
    pub(super) fn terms(&self) -> LeaseTerms<'_> {
        LeaseTerms {
            owner: &self.settings.owner,
            duration: self.settings.duration,
        }
    }

    /// Records a lease taken at `epoch` on a row at `version`, by a query sent at `sent`
    /// that left `remaining`.
    pub(super) fn hold(
        &self,
        key: Key,
        epoch: u64,
        version: u64,
        sent: Instant,
        remaining: Duration,
    ) {
        lock(&self.held).insert(
            key,
            Held {
                epoch,
                version,
                until: sent + remaining,
            },
        );
    }

    /// The epoch `key` is held at, if it is held.
    pub(super) fn epoch(&self, key: &Key) -> Option<u64> {
        lock(&self.held).get(key).map(|held| held.epoch)
    }

    /// The version of `key` this engine last saw, if it holds `key`.
    pub(super) fn version(&self, key: &Key) -> Option<u64> {
        lock(&self.held).get(key).map(|held| held.version)
    }

    /// Notes a version of `key` this engine has seen (its own commit, or a re-read).
    pub(super) fn saw_version(&self, key: &Key, version: u64) {
        if let Some(held) = lock(&self.held).get_mut(key) {
            held.version = held.version.max(version);
        }
    }

    /// Stops holding `key` (nothing more is owed).
    pub(super) fn forget(&self, key: &Key) {
        lock(&self.held).remove(key);
    }

    /// Stops holding `key` if it is held at `epoch` (that lease was lost); returns whether
    /// it was.
    pub(super) fn forget_epoch(&self, key: &Key, epoch: u64) -> bool {
        let mut held = lock(&self.held);
        if held.get(key).is_some_and(|lease| lease.epoch == epoch) {
            held.remove(key);
            true
        } else {
            false
        }
    }

    /// Whether a WeChat call for `key` may start at `now`: it is held, and (on a shared
    /// store) more than the safety margin of its lease is left.
    pub(super) fn may_call(&self, key: &Key, now: Instant) -> bool {
        match lock(&self.held).get(key) {
            Some(held) => !self.settings.shared || now + self.settings.safety_margin < held.until,
            None => false,
        }
    }

    /// Every lease held, for a renewal or a hand-back.
    pub(super) fn held(&self) -> HeldLeases {
        let mut held = HeldLeases::default();
        for (key, lease) in lock(&self.held).iter() {
            match key {
                Key::Payment(id) => held.payments.push((id.clone(), lease.epoch)),
                Key::Refund(id) => held.refunds.push((id.clone(), lease.epoch)),
            }
        }
        held
    }

    /// Applies a renewal of `asked` sent at `sent`: extends what is still held, forgets what
    /// is not, and returns the keys whose version moved without this engine (to re-read)
    /// and the keys lost.
    pub(super) fn renewed(
        &self,
        asked: &HeldLeases,
        renewal: &Renewal,
        sent: Instant,
    ) -> (Vec<Key>, Vec<Key>) {
        let mut held = lock(&self.held);
        // Only leases still held at the epoch asked about: one lost and claimed again
        // meanwhile is a new lease, which this renewal says nothing about.
        let asked: HashMap<Key, u64> = asked
            .payments
            .iter()
            .map(|(id, epoch)| (Key::Payment(id.clone()), *epoch))
            .chain(
                asked
                    .refunds
                    .iter()
                    .map(|(id, epoch)| (Key::Refund(id.clone()), *epoch)),
            )
            .collect();
        let same_lease = |key: &Key, lease: &Held| asked.get(key) == Some(&lease.epoch);
        let mut changed = Vec::new();
        let mut still = std::collections::HashSet::new();
        for (renewed, key) in renewal
            .payments
            .iter()
            .map(|renewed| (renewed, Key::Payment(renewed.id.clone())))
            .chain(
                renewal
                    .refunds
                    .iter()
                    .map(|renewed| (renewed, Key::Refund(renewed.id.clone()))),
            )
        {
            if let Some(lease) = held.get_mut(&key).filter(|lease| same_lease(&key, lease)) {
                lease.until = sent + renewed.remaining;
                if renewed.version != lease.version {
                    lease.version = renewed.version;
                    changed.push(key.clone());
                }
            }
            still.insert(key);
        }
        let lost: Vec<Key> = asked
            .keys()
            .filter(|key| !still.contains(*key))
            .filter(|key| held.get(*key).is_some_and(|lease| same_lease(key, lease)))
            .cloned()
            .collect();
        for key in &lost {
            held.remove(key);
        }
        (changed, lost)
    }

    /// How many leases are held.
    pub(super) fn len(&self) -> usize {
        lock(&self.held).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Renewed;

    fn settings(shared: bool) -> LeaseSettings {
        LeaseSettings {
            owner: "a/1".into(),
            shared,
            duration: Duration::from_secs(10),
            renew_interval: Duration::from_secs(3),
            safety_margin: Duration::from_secs(2),
            claim_interval: Duration::from_secs(1),
        }
    }

    fn pay(id: &str) -> Key {
        Key::Payment(id.into())
    }

    #[test]
    fn a_call_needs_the_lease_with_the_margin_left_on_a_shared_store() {
        let leases = Leases::new(settings(true));
        let sent = Instant::now();
        leases.hold(pay("p"), 1, 1, sent, Duration::from_secs(10));
        assert!(leases.may_call(&pay("p"), sent + Duration::from_secs(7)));
        assert!(!leases.may_call(&pay("p"), sent + Duration::from_secs(8)));
        assert!(!leases.may_call(&pay("q"), sent));
        // One owner: the margin does not apply, holding is enough.
        let single = Leases::new(settings(false));
        single.hold(pay("p"), 1, 1, sent, Duration::from_secs(10));
        assert!(single.may_call(&pay("p"), sent + Duration::from_secs(60)));
    }

    #[test]
    fn a_renewal_extends_what_is_held_reports_changes_and_forgets_what_is_lost() {
        let leases = Leases::new(settings(true));
        let sent = Instant::now();
        leases.hold(pay("p"), 1, 3, sent, Duration::from_secs(10));
        leases.hold(pay("q"), 2, 5, sent, Duration::from_secs(10));
        leases.hold(Key::Refund("r".into()), 1, 1, sent, Duration::from_secs(10));
        let asked = leases.held();
        let renewal = Renewal {
            payments: vec![Renewed {
                id: "p".into(),
                version: 4,
                remaining: Duration::from_secs(10),
            }],
            refunds: vec![Renewed {
                id: "r".into(),
                version: 1,
                remaining: Duration::from_secs(10),
            }],
        };
        let later = sent + Duration::from_secs(5);
        let (changed, lost) = leases.renewed(&asked, &renewal, later);
        assert_eq!(changed, [pay("p")]);
        assert_eq!(lost, [pay("q")]);
        assert_eq!(leases.epoch(&pay("q")), None);
        assert!(leases.may_call(&pay("p"), later + Duration::from_secs(7)));
        assert_eq!(leases.len(), 2);
    }
}
