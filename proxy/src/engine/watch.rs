//! Who hears of committed changes: long-poll subscriptions ([`Watch`]), one watch channel per
//! payment with a waiting request, carrying every version of the payment that is committed;
//! and, with several proxies on one PostgreSQL database, the changes other proxies commit
//! ([`Change`], docs/postgresql.md §4).
//!
//! This proxy's own commits reach its long-polls directly (`Shared::committed`). Another
//! proxy's reach them through the database: `crate::notify` listens for the announcements of
//! migration 0009 and hands each to [`Engine::heard`], which re-reads a watched payment and
//! publishes it here, re-plans a payment or refund this engine leases when another proxy
//! changed it (a cashier's cancel taken elsewhere), claims work another proxy handed back,
//! and passes every change on to [`Engine::changes`] subscribers. NOTIFY is lossy (a dropped
//! connection loses what was sent meanwhile), so while changes are heard from the database
//! each long-poll also re-reads its payment every [`RECHECK`], and lease renewals still
//! report versions that moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::Engine;
use super::driver::{Shared, lock};
use super::schedule::Key;
use crate::store::PaymentRecord;

/// How often a long-poll re-reads its payment while changes come from other proxies too: the
/// bound on how late a lost announcement is noticed.
pub const RECHECK: Duration = Duration::from_secs(1);

/// How many changes a slow [`Engine::changes`] subscriber may fall behind before it is told
/// it missed some ([`broadcast::error::RecvError::Lagged`]).
const CHANGES_CAPACITY: usize = 1024;

/// A change committed to the database by any proxy, as announced (migration 0009), or the
/// news that announcements may have been lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The payment `id` is now at `version` (or later).
    Payment {
        /// The payment's id.
        id: String,
        /// The version the announcing commit wrote.
        version: u64,
    },
    /// The refund `id` is now at `version` (or later).
    Refund {
        /// The refund's id.
        id: String,
        /// The version the announcing commit wrote.
        version: u64,
    },
    /// A lease was handed back (an instance stopped gracefully): its work may be claimed now.
    Released,
    /// The listening connection was (re)opened: changes committed while it was down were not
    /// announced. Re-read whatever you hold.
    Missed,
}

impl Change {
    /// Parses an announcement's payload (migration 0009): `payment ID VERSION`,
    /// `refund ID VERSION`, or either prefixed with `released `.
    pub fn parse(payload: &str) -> Option<Change> {
        let (released, rest) = match payload.strip_prefix("released ") {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let mut words = rest.split(' ');
        let (kind, id, version) = (words.next()?, words.next()?, words.next()?);
        if words.next().is_some() || id.is_empty() {
            return None;
        }
        let version = version.parse().ok()?;
        let id = id.to_owned();
        let change = match kind {
            "payment" => Change::Payment { id, version },
            "refund" => Change::Refund { id, version },
            _ => return None,
        };
        Some(if released { Change::Released } else { change })
    }

    /// The payment or refund this change is about, with its version.
    fn key(&self) -> Option<(Key, u64)> {
        match self {
            Change::Payment { id, version } => Some((Key::Payment(id.clone()), *version)),
            Change::Refund { id, version } => Some((Key::Refund(id.clone()), *version)),
            Change::Released | Change::Missed => None,
        }
    }
}

type Channel = watch::Sender<Option<Arc<PaymentRecord>>>;

/// The open long-poll channels, by payment id (a channel goes when its last subscription
/// does), and the feed of changes heard from the database.
pub(super) struct Watchers {
    channels: HashMap<String, Channel>,
    changes: broadcast::Sender<Change>,
    /// Set once changes are heard from the database: how often long-polls re-read.
    recheck: Option<Duration>,
}

impl Default for Watchers {
    fn default() -> Watchers {
        Watchers {
            channels: HashMap::new(),
            changes: broadcast::channel(CHANGES_CAPACITY).0,
            recheck: None,
        }
    }
}

/// A subscription to one payment's version, from [`Engine::watch`](super::Engine::watch).
pub struct Watch {
    receiver: watch::Receiver<Option<Arc<PaymentRecord>>>,
    shared: Arc<Shared>,
    payment_id: String,
    recheck: Option<Duration>,
}

impl Watch {
    /// Subscribes to `payment_id`, opening its channel if it has none.
    pub(super) fn subscribe(shared: &Arc<Shared>, payment_id: &str) -> Watch {
        let mut watchers = lock(&shared.watchers);
        let recheck = watchers.recheck;
        let sender = watchers
            .channels
            .entry(payment_id.to_owned())
            .or_insert_with(|| watch::channel(None).0);
        Watch {
            receiver: sender.subscribe(),
            shared: Arc::clone(shared),
            payment_id: payment_id.to_owned(),
            recheck,
        }
    }

    /// Waits until a change is committed after the last one seen, and returns the payment
    /// as that change left it. While other proxies may commit changes, the payment is also
    /// re-read every [`RECHECK`], so a lost announcement delays an answer by at most that.
    pub async fn changed(&mut self) -> Arc<PaymentRecord> {
        loop {
            let recheck = async {
                match self.recheck {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.receiver.changed() => {
                    if changed.is_err() {
                        // The sender lives as long as a subscription does; this cannot end
                        // early, but if it did, waiting forever is the correct "no change"
                        // answer.
                        return std::future::pending().await;
                    }
                    if let Some(record) = self.receiver.borrow_and_update().clone() {
                        return record;
                    }
                }
                () = recheck => reread(&self.shared, &self.payment_id).await,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = lock(&self.shared.watchers);
        if let Some(sender) = watchers.channels.get(&self.payment_id) {
            // This subscription is still counted while it is being dropped.
            if sender.receiver_count() <= 1 {
                watchers.channels.remove(&self.payment_id);
            }
        }
    }
}

/// Tells `payment`'s subscriptions, if it has any, that this version was committed. Versions
/// only move forward: a version older than (or the same as) the one last published is
/// dropped, so a slow re-read never takes a long-poll back.
pub(super) fn publish(watchers: &Watchers, payment: &PaymentRecord) {
    if let Some(sender) = watchers.channels.get(&payment.id) {
        sender.send_if_modified(|current| {
            let newer = current
                .as_ref()
                .is_none_or(|seen| seen.version < payment.version);
            if newer {
                *current = Some(Arc::new(payment.clone()));
            }
            newer
        });
    }
}

/// Re-reads a payment and publishes it to its long-polls. A failed read is logged and left
/// to the next re-read.
async fn reread(shared: &Shared, payment_id: &str) {
    match shared.store.get_payment(payment_id).await {
        Ok(Some(record)) => publish(&lock(&shared.watchers), &record),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(payment = %payment_id, %error, "cannot re-read a watched payment");
        }
    }
}

impl Engine {
    /// Changes committed by any proxy on the database, as they are heard (nothing on SQLite,
    /// where this engine commits every change itself). A subscriber that falls more than
    /// 1024 changes behind gets [`broadcast::error::RecvError::Lagged`]: treat it like
    /// [`Change::Missed`]. This proxy's own commits are announced too; compare versions.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        lock(&self.shared.watchers).changes.subscribe()
    }

    /// Called by the database listener (`crate::notify`) once it listens: from now on
    /// long-polls also re-read their payment every [`RECHECK`].
    pub(crate) fn hear_changes(&self) {
        lock(&self.shared.watchers).recheck = Some(RECHECK);
    }

    /// Called by the database listener for each change heard (each reaction runs in a task
    /// of its own, so that the listener keeps reading):
    /// - a watched payment whose announced version is newer than its long-polls have seen is
    ///   re-read and published to them;
    /// - a payment or refund this engine holds the lease of, announced at a version it has
    ///   not seen (a cancel taken by another instance), is re-read and re-planned at once
    ///   rather than at the next lease renewal;
    /// - a lease handed back, or announcements missed, make the engine claim due work now;
    ///   after [`Change::Missed`] every watched payment is re-read too;
    /// - every change goes to the [`Engine::changes`] subscribers.
    pub(crate) fn heard(&self, change: Change) {
        match change.key() {
            Some((key, version))
                if self
                    .shared
                    .leases
                    .version(&key)
                    .is_some_and(|seen| seen < version) =>
            {
                let shared = Arc::clone(&self.shared);
                self.shared
                    .tasks
                    .spawn(async move { shared.changed_elsewhere(&key).await });
            }
            Some(_) => {}
            None => self.claim_now(),
        }
        let stale: Vec<String> = {
            let watchers = lock(&self.shared.watchers);
            // No subscriber is not an error: the change is only a hint.
            let _ = watchers.changes.send(change.clone());
            match &change {
                Change::Payment { id, version } => watchers
                    .channels
                    .get(id)
                    .filter(|sender| {
                        sender
                            .borrow()
                            .as_ref()
                            .is_none_or(|seen| seen.version < *version)
                    })
                    .map(|_| id.clone())
                    .into_iter()
                    .collect(),
                Change::Refund { .. } | Change::Released => Vec::new(),
                Change::Missed => watchers.channels.keys().cloned().collect(),
            }
        };
        for id in stale {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { reread(&shared, &id).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn announcements_are_parsed_strictly() {
        assert_eq!(
            Change::parse("payment p_1 3"),
            Some(Change::Payment {
                id: "p_1".into(),
                version: 3
            })
        );
        assert_eq!(
            Change::parse("refund r_9 1"),
            Some(Change::Refund {
                id: "r_9".into(),
                version: 1
            })
        );
        assert_eq!(
            Change::parse("released payment p_1 3"),
            Some(Change::Released)
        );
        for bad in [
            "released order p_1 3",
            "released",
            "",
            "payment p_1",
            "payment p_1 x",
            "order p_1 1",
            "payment  1",
            "payment p 1 2",
        ] {
            assert_eq!(Change::parse(bad), None, "{bad:?}");
        }
    }
}
