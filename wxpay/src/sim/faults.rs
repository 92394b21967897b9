//! Injected transport and reply faults, consumed one per call.
//!
//! A test queues "the next N calls to micropay get fault F"; each matching call takes one
//! and the entry disappears when its count reaches zero. Faults stack in FIFO order per
//! endpoint. Whether the call is processed (and so whether it changed the ledger) is part of
//! each fault's definition below, because that is exactly what a client test needs to know.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codes::Api;

/// One injected fault. The doc of each variant says whether the request is processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The request **is processed** when it arrives; the reply is held back for `ms`
    /// milliseconds of real time (so a client timeout fires while the effect is committed).
    Delay {
        /// Real milliseconds to wait before replying.
        ms: u64,
    },
    /// The connection is closed (TCP FIN, no TLS close_notify, no reply); the request is
    /// **not processed**.
    DropBeforeProcessing,
    /// The request **is processed** and committed, then the connection is closed without a
    /// reply.
    DropAfterCommit,
    /// The connection is reset (TCP RST); the request is **not processed**.
    ConnectionReset,
    /// An nginx-style HTML error page with this status (e.g. 502, 503, 504); the request is
    /// **not processed**.
    Html5xx {
        /// The HTTP status code to answer with.
        status: u16,
    },
    /// The request **is processed**; the reply body is truncated, unparseable XML.
    GarbageXml,
    /// The request **is processed**; the reply is well-formed but its `sign` is wrong.
    BadSignature,
    /// The request reaches WeChat `ms` milliseconds of real time after it was sent, and
    /// **is processed** then: it is recorded in the call log, and checked against the clock
    /// (a micropay's `time_expire`), only on arrival. Models a request held up on the way
    /// (a sender paused after sending, a slow network), for tests of late arrival.
    Hold {
        /// Real milliseconds before the request arrives.
        ms: u64,
    },
}

impl Fault {
    /// Whether the call is processed (its effect committed) despite this fault.
    pub fn processes_request(self) -> bool {
        matches!(
            self,
            Fault::Delay { .. }
                | Fault::DropAfterCommit
                | Fault::GarbageXml
                | Fault::BadSignature
                | Fault::Hold { .. }
        )
    }

    /// How long to hold the reply back, for [`Fault::Delay`].
    pub(crate) fn delay(self) -> Option<Duration> {
        match self {
            Fault::Delay { ms } => Some(Duration::from_millis(ms)),
            _ => None,
        }
    }
}

/// The queues of pending faults, per endpoint.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    queues: HashMap<Api, VecDeque<(Fault, u32)>>,
}

impl Faults {
    /// Queues `fault` for the next `times` calls to `api`.
    pub(crate) fn inject(&mut self, api: Api, fault: Fault, times: u32) {
        if times > 0 {
            self.queues
                .entry(api)
                .or_default()
                .push_back((fault, times));
        }
    }

    /// Takes the fault for one call to `api`, if any is queued.
    pub(crate) fn take(&mut self, api: Api) -> Option<Fault> {
        let queue = self.queues.get_mut(&api)?;
        let (fault, remaining) = queue.front_mut()?;
        let fault = *fault;
        *remaining -= 1;
        if *remaining == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    /// Takes the fault for one call to `api` only if it is a [`Fault::Hold`], and returns how
    /// long to hold the call (applied before the call is recorded, unlike every other fault).
    pub(crate) fn take_hold(&mut self, api: Api) -> Option<Duration> {
        let queue = self.queues.get(&api)?;
        match queue.front()? {
            (Fault::Hold { ms }, _) => {
                let hold = Duration::from_millis(*ms);
                self.take(api);
                Some(hold)
            }
            _ => None,
        }
    }

    /// Removes every queued fault.
    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }

    /// The queued faults, for the control API.
    pub(crate) fn pending(&self) -> Vec<PendingFault> {
        let mut pending: Vec<PendingFault> = self
            .queues
            .iter()
            .flat_map(|(api, queue)| {
                queue.iter().map(|(fault, remaining)| PendingFault {
                    endpoint: api.name().to_owned(),
                    fault: *fault,
                    remaining: *remaining,
                })
            })
            .collect();
        pending.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        pending
    }
}

/// A queued fault, as the control API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingFault {
    /// The endpoint's short name (`micropay`, `orderquery`, …).
    pub endpoint: String,
    /// The fault.
    pub fault: Fault,
    /// How many more calls will get it.
    pub remaining: u32,
}

/// The API with this short name (`micropay`, `reverse`, …, as [`Api::name`] writes it).
pub fn api_by_name(name: &str) -> Option<Api> {
    Api::ALL.into_iter().find(|api| api.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order() {
        // Arrange
        let mut faults = Faults::default();
        faults.inject(Api::Micropay, Fault::GarbageXml, 2);
        faults.inject(Api::Micropay, Fault::ConnectionReset, 1);

        // Act
        let taken: Vec<_> = (0..4).map(|_| faults.take(Api::Micropay)).collect();

        // Assert
        assert_eq!(
            taken,
            vec![
                Some(Fault::GarbageXml),
                Some(Fault::GarbageXml),
                Some(Fault::ConnectionReset),
                None
            ]
        );
        assert_eq!(faults.take(Api::OrderQuery), None);
    }

    #[test]
    fn only_a_hold_at_the_front_is_taken_before_recording() {
        let mut faults = Faults::default();
        faults.inject(Api::Micropay, Fault::GarbageXml, 1);
        faults.inject(Api::Micropay, Fault::Hold { ms: 250 }, 1);

        assert_eq!(faults.take_hold(Api::Micropay), None);
        assert_eq!(faults.take(Api::Micropay), Some(Fault::GarbageXml));
        assert_eq!(
            faults.take_hold(Api::Micropay),
            Some(Duration::from_millis(250))
        );
        assert_eq!(faults.take(Api::Micropay), None);
    }

    #[test]
    fn faults_read_from_json() {
        let fault: Fault =
            serde_json::from_str(r#"{"kind":"html5xx","status":502}"#).expect("json");
        assert_eq!(fault, Fault::Html5xx { status: 502 });
        assert_eq!(api_by_name("refundquery"), Some(Api::RefundQuery));
    }
}
