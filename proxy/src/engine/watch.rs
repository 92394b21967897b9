//! Long-poll subscriptions: each payment with a waiting request has one watch channel, which
//! carries every version of the payment the engine or a cancel commits.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::driver::{Shared, lock};
use crate::store::PaymentRecord;

/// The open channels, by payment id; a channel goes when its last subscription does.
pub(super) type Watchers = HashMap<String, watch::Sender<Option<Arc<PaymentRecord>>>>;

/// A subscription to one payment's version, from [`Engine::watch`](super::Engine::watch).
pub struct Watch {
    receiver: watch::Receiver<Option<Arc<PaymentRecord>>>,
    shared: Arc<Shared>,
    payment_id: String,
}

impl Watch {
    /// Subscribes to `payment_id`, opening its channel if it has none.
    pub(super) fn subscribe(shared: &Arc<Shared>, payment_id: &str) -> Watch {
        let mut watchers = lock(&shared.watchers);
        let sender = watchers
            .entry(payment_id.to_owned())
            .or_insert_with(|| watch::channel(None).0);
        Watch {
            receiver: sender.subscribe(),
            shared: Arc::clone(shared),
            payment_id: payment_id.to_owned(),
        }
    }

    /// Waits until a change is committed after the last one seen, and returns the payment
    /// as that change left it.
    pub async fn changed(&mut self) -> Arc<PaymentRecord> {
        loop {
            if self.receiver.changed().await.is_err() {
                // The sender lives as long as a subscription does; this cannot end early,
                // but if it did, waiting forever is the correct "no change" answer.
                return std::future::pending().await;
            }
            if let Some(record) = self.receiver.borrow_and_update().clone() {
                return record;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watchers = lock(&self.shared.watchers);
        if let Some(sender) = watchers.get(&self.payment_id) {
            // This subscription is still counted while it is being dropped.
            if sender.receiver_count() <= 1 {
                watchers.remove(&self.payment_id);
            }
        }
    }
}

/// Tells `payment`'s subscriptions, if it has any, that this version was committed.
pub(super) fn publish(watchers: &Watchers, payment: &PaymentRecord) {
    if let Some(sender) = watchers.get(&payment.id) {
        sender.send_replace(Some(Arc::new(payment.clone())));
    }
}
