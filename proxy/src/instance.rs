//! This proxy's identity among several on one database (docs/postgresql.md §4).
//!
//! Every proxy has a **name**, `[server] instance` or else the host's name: stable across
//! restarts, so that operators recognise it in metrics (the `instance` label), in logs and in
//! the `User-Agent` of its calls to WeChat. Each run of the process also has a **run id**,
//! the name and a random suffix: what a lease records as its owner, so that a proxy restarted
//! under the same name never mistakes the leases of its previous run for its own.

use uuid::Uuid;

use crate::config::ServerConfig;

/// The name a proxy takes when `[server] instance` is unset and the host name cannot be
/// read.
const FALLBACK_NAME: &str = "paycode-proxy";

/// Who this process is: its configured name and this run's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// `[server] instance`, or the host's name: 1–64 characters of `A–Z a–z 0–9 . _ -`.
    pub name: String,
    /// `NAME/` and 12 random hexadecimal digits, new at every start.
    pub run_id: String,
}

impl Instance {
    /// The identity of this run for `server`.
    pub fn new(server: &ServerConfig) -> Instance {
        let name = server.instance.clone().unwrap_or_else(host_name);
        let suffix = Uuid::new_v4().simple().to_string();
        Instance {
            run_id: format!("{name}/{}", &suffix[..12]),
            name,
        }
    }

    /// The `User-Agent` of this proxy's calls to WeChat: `paycode-proxy/VERSION (NAME)`.
    pub fn user_agent(&self) -> String {
        format!(
            "paycode-proxy/{} ({})",
            env!("CARGO_PKG_VERSION"),
            self.name
        )
    }
}

/// The host's name, made fit for an instance name (other characters become `-`).
fn host_name() -> String {
    let name: String = whoami::fallible::hostname()
        .unwrap_or_default()
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .take(64)
        .collect();
    if name.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        name
    }
}

/// Whether `c` may appear in an instance name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_name_wins_and_every_run_has_its_own_id() {
        let server = ServerConfig {
            instance: Some("till-2".into()),
            ..ServerConfig::default()
        };
        let first = Instance::new(&server);
        let second = Instance::new(&server);
        assert_eq!(first.name, "till-2");
        assert!(first.run_id.starts_with("till-2/"));
        assert_eq!(first.run_id.len(), "till-2/".len() + 12);
        assert_ne!(first.run_id, second.run_id);
        assert!(first.user_agent().ends_with(" (till-2)"));
    }

    #[test]
    fn without_a_name_the_host_name_is_used() {
        let name = Instance::new(&ServerConfig::default()).name;
        assert!(!name.is_empty() && name.len() <= 64);
        assert!(name.chars().all(is_name_char), "{name}");
    }
}
