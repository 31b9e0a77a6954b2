//! Real servers from the host's Debian packages, each in an OCI bundle with a suite that
//! drives its real features in its own protocol, for proving that a profile recorded on one
//! run holds on the next.
//!
//! * [`Server`]: nginx (the demo's), redis, PostgreSQL 15, memcached, haproxy: its
//!   [`Recipe`](bundle::Recipe) (binaries, config, users, state directories), its suite,
//!   its signals and what data survives which stop.
//! * [`bundle::build`]: the bundle, with the server's state in host directories that are
//!   bind-mounted into every container, so a later run starts on an earlier run's data.
//! * [`lifecycle::run`]: one run: start, suite, reload, graceful stop, restart on the data,
//!   kill -9 (pid and lock files stay behind), restart, suite, stop.

pub mod backend;
pub mod bundle;
pub mod guest;
pub mod haproxy;
pub mod lifecycle;
pub mod memcached;
pub mod nginx;
pub mod oci;
pub mod postgres;
pub mod proto;
pub mod redis;
pub mod suite;

use std::{
    fmt,
    net::{SocketAddr, TcpListener},
    str::FromStr,
    time::Duration,
};

use oci_spec::runtime::Capability;
pub use profgen_demo::suite::Check;

/// The servers, in the order the held-out proof runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Server {
    Nginx,
    Redis,
    Postgres,
    Memcached,
    Haproxy,
}

/// How a container ended: what its data may have survived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server's own stop signal, and it exited.
    Graceful,
    /// SIGKILL: nothing cleaned up, pid and lock files left behind.
    Killed,
}

/// What a suite is told.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The server's port on 127.0.0.1 (some servers use the next few too).
    pub port: u16,
    /// Suite runs before this one whose data the server must still hold.
    pub previous: u32,
    /// How long the server may take to answer at all (crash recovery included).
    pub ready_timeout: Duration,
}

impl SuiteOptions {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Server {
    pub const ALL: [Server; 5] = [
        Server::Nginx,
        Server::Redis,
        Server::Postgres,
        Server::Memcached,
        Server::Haproxy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Server::Nginx => "nginx",
            Server::Redis => "redis",
            Server::Postgres => "postgres",
            Server::Memcached => "memcached",
            Server::Haproxy => "haproxy",
        }
    }

    /// What kind of server it stands for.
    pub fn kind(self) -> &'static str {
        match self {
            Server::Nginx => "web server (the demo)",
            Server::Redis => "database (AOF + RDB)",
            Server::Postgres => "database",
            Server::Memcached => "cache (restartable)",
            Server::Haproxy => "proxy",
        }
    }

    /// How many consecutive ports from the base port it uses.
    pub fn ports(self) -> u16 {
        match self {
            Server::Haproxy => 5,
            _ => 1,
        }
    }

    pub fn recipe(self, port: u16) -> bundle::Recipe {
        match self {
            Server::Nginx => nginx::recipe(port),
            Server::Redis => redis::recipe(port),
            Server::Postgres => postgres::recipe(port),
            Server::Memcached => memcached::recipe(port),
            Server::Haproxy => haproxy::recipe(port),
        }
    }

    /// A one-off command run on the bundle's root and state before the first start (not part
    /// of any run: an image's or an init container's job).
    pub fn setup(self) -> Option<Vec<String>> {
        match self {
            Server::Postgres => Some(postgres::initdb_args()),
            _ => None,
        }
    }

    pub fn suite(self, opts: &SuiteOptions) -> Vec<Check> {
        match self {
            Server::Nginx => nginx::suite(opts),
            Server::Redis => redis::suite(opts),
            Server::Postgres => postgres::suite(opts),
            Server::Memcached => memcached::suite(opts),
            Server::Haproxy => haproxy::suite(opts),
        }
    }

    /// The signal that stops it gracefully (what its Docker image's STOPSIGNAL is).
    pub fn stop_signal(self) -> &'static str {
        match self {
            Server::Nginx => "QUIT",
            Server::Redis => "TERM",
            Server::Postgres => "INT",
            // Saves the item memory's metadata so that the next start restores it.
            Server::Memcached => "USR1",
            Server::Haproxy => "USR1",
        }
    }

    /// The signal that reloads its configuration, when it has one (haproxy's suite reloads it
    /// through the master CLI instead).
    pub fn reload_signal(self) -> Option<&'static str> {
        match self {
            Server::Nginx | Server::Postgres => Some("HUP"),
            Server::Redis | Server::Memcached | Server::Haproxy => None,
        }
    }

    /// How long to wait after a graceful stop before starting again: memcached refuses to
    /// restore a cache whose recorded stop time is not in the past (seen: a restart 0.3 s after
    /// the stop starts empty, one 2.5 s after restores it).
    pub fn restart_delay(self) -> Duration {
        match self {
            Server::Memcached => Duration::from_millis(2500),
            _ => Duration::ZERO,
        }
    }

    /// Whether the suite's data survives a container that ended this way.
    pub fn keeps_data(self, ending: Ending) -> bool {
        match self {
            Server::Redis | Server::Postgres => true,
            Server::Memcached => ending == Ending::Graceful,
            Server::Nginx | Server::Haproxy => false,
        }
    }

    /// The container's capability bounding set, as AppArmor names them.
    pub fn capabilities(self) -> Vec<&'static str> {
        let caps: Vec<Capability> = self.recipe(1).process.capabilities;
        caps.iter()
            .filter_map(|c| {
                let name = serde_json::to_value(c).ok()?;
                let name = name
                    .as_str()?
                    .trim_start_matches("CAP_")
                    .to_ascii_lowercase();
                profgen::model::CAPABILITY_NAMES
                    .iter()
                    .copied()
                    .find(|c| *c == name)
            })
            .collect()
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Server {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Server::ALL
            .into_iter()
            .find(|srv| srv.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Server::ALL.iter().map(|s| s.name()).collect();
                format!("unknown server {s:?}; one of {}", names.join(", "))
            })
    }
}

/// A base port with `count` free consecutive ports on 127.0.0.1 from it.
pub fn free_ports(count: u16) -> std::io::Result<u16> {
    for _ in 0..50 {
        let base = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if base.checked_add(count).is_none() {
            continue;
        }
        let free = (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return Ok(base);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no {count} consecutive free ports on 127.0.0.1"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Server::ALL {
            assert_eq!(s.name().parse::<Server>().unwrap(), s);
        }
        let err = "mysql".parse::<Server>().unwrap_err();
        assert!(err.contains("redis"), "{err}");
    }

    #[test]
    fn only_databases_keep_data_through_a_kill() {
        let kept: Vec<Server> = Server::ALL
            .into_iter()
            .filter(|s| s.keeps_data(Ending::Killed))
            .collect();
        assert_eq!(kept, [Server::Redis, Server::Postgres]);
        assert!(Server::Memcached.keeps_data(Ending::Graceful));
    }

    #[test]
    fn capabilities_in_apparmor_names() {
        assert_eq!(
            Server::Haproxy.capabilities(),
            [
                "audit_write",
                "kill",
                "net_bind_service",
                "sys_chroot",
                "setgid",
                "setuid"
            ]
        );
        assert!(Server::Redis.capabilities().is_empty());
        assert_eq!(
            Server::Nginx.capabilities(),
            [
                "audit_write",
                "kill",
                "net_bind_service",
                "chown",
                "setgid",
                "setuid"
            ]
        );
    }

    #[test]
    fn free_ports_are_free() {
        let base = free_ports(3).unwrap();
        for i in 0..3 {
            TcpListener::bind(("127.0.0.1", base + i)).unwrap();
        }
    }
}
