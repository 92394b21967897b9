//! The engine's timer queue: which payment or refund is due for its next WeChat call, and
//! when. One ordered set serves every pending item, so a thousand payments waiting for a
//! password cost a thousand small entries, not a thousand sleeping tasks.

use std::collections::{BTreeSet, HashMap};

use crate::store::Millis;

/// What the engine drives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A payment, by id.
    Payment(String),
    /// A refund, by id.
    Refund(String),
}

/// Due times by key, at most one per key.
#[derive(Debug, Default)]
pub struct Schedule {
    by_time: BTreeSet<(Millis, Key)>,
    by_key: HashMap<Key, Millis>,
}

impl Schedule {
    /// Sets `key` to be due at `at`, replacing any earlier entry for it.
    pub fn set(&mut self, key: Key, at: Millis) {
        if let Some(previous) = self.by_key.insert(key.clone(), at) {
            self.by_time.remove(&(previous, key.clone()));
        }
        self.by_time.insert((at, key));
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &Key) {
        if let Some(at) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    /// Removes and returns every key due at or before `now`, earliest first.
    pub fn take_due(&mut self, now: Millis) -> Vec<Key> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_time.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    /// When the earliest entry is due.
    pub fn next_due(&self) -> Option<Millis> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// How many entries are waiting.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str) -> Key {
        Key::Payment(id.into())
    }

    #[test]
    fn takes_due_entries_in_time_order_and_keeps_later_ones() {
        let mut schedule = Schedule::default();
        schedule.set(payment("b"), Millis(20));
        schedule.set(payment("a"), Millis(10));
        schedule.set(Key::Refund("r".into()), Millis(30));
        assert_eq!(schedule.next_due(), Some(Millis(10)));
        assert_eq!(
            schedule.take_due(Millis(25)),
            vec![payment("a"), payment("b")]
        );
        assert_eq!(schedule.len(), 1);
        assert_eq!(schedule.take_due(Millis(25)), Vec::<Key>::new());
        assert_eq!(schedule.next_due(), Some(Millis(30)));
    }

    #[test]
    fn setting_a_key_again_replaces_its_time() {
        let mut schedule = Schedule::default();
        schedule.set(payment("a"), Millis(10));
        schedule.set(payment("a"), Millis(50));
        assert_eq!(schedule.len(), 1);
        assert!(schedule.take_due(Millis(20)).is_empty());
        assert_eq!(schedule.take_due(Millis(50)), vec![payment("a")]);
        schedule.set(payment("a"), Millis(5));
        schedule.remove(&payment("a"));
        assert!(schedule.is_empty());
        assert_eq!(schedule.next_due(), None);
    }
}
