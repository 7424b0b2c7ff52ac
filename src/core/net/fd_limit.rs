//! The process's open-file limit, which every connection counts against. Common
//! defaults (a soft limit of 1,024 on Linux, 256 on macOS) are below what the
//! connection bounds admit, and a server at its limit cannot accept: new connections
//! wait while the old ones are served. The hard limit is usually far higher, and raising
//! the soft one up to it needs no privilege, so servers raise it at start.

/// Files a node holds besides its connections: the database, logs, the control API's
/// clients, discovery's sockets, the runtime's own.
const HEADROOM: u64 = 256;

/// Open files the servers' connection bounds can use at once. Every accepted
/// connection may hold one outgoing connection beside it (the router's to a peer, the
/// worker's to its engine).
pub fn needed_for(connection_bounds: &[usize]) -> u64 {
    connection_bounds.iter().fold(HEADROOM, |sum, &bound| {
        sum.saturating_add((bound as u64).saturating_mul(2))
    })
}

/// The soft limit before and after [`raise_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub now: u64,
}

impl FdLimit {
    /// True when the limit in force is below `needed`: the hard limit stopped us.
    pub fn short_of(&self, needed: u64) -> bool {
        self.now < needed
    }
}

/// Raises the soft open-file limit to `needed` where the hard limit allows, never
/// lowering it. Where the platform has no such limit, reports `needed` as in force.
pub fn raise_to(needed: u64) -> std::io::Result<FdLimit> {
    #[cfg(unix)]
    {
        let (before, _) = rlimit::Resource::NOFILE.get()?;
        let now = rlimit::increase_nofile_limit(needed)?;
        Ok(FdLimit { before, now })
    }
    #[cfg(not(unix))]
    {
        Ok(FdLimit {
            before: needed,
            now: needed,
        })
    }
}

/// Raises the limit for servers with these connection bounds, and says so in the log
/// when it cannot be raised far enough (with the command that fixes it).
pub fn raise_for_servers(connection_bounds: &[usize]) {
    let needed = needed_for(connection_bounds);
    match raise_to(needed) {
        Ok(limit) if limit.short_of(needed) => tracing::warn!(
            limit = limit.now,
            needed,
            "the open-file limit is below what the connection bounds may use; \
             under load new connections will wait. Raise it (`ulimit -n {needed}`) \
             or lower router.max_connections / worker.max_connections"
        ),
        Ok(limit) if limit.now != limit.before => tracing::debug!(
            from = limit.before,
            to = limit.now,
            "raised the open-file limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_sides_of_each_connection_plus_headroom() {
        let cases: &[(&[usize], u64)] = &[
            (&[], 256),
            (&[1024], 2304),
            (&[1024, 1024], 4352),
            (&[usize::MAX], u64::MAX),
        ];
        for (bounds, want) in cases {
            assert_eq!(needed_for(bounds), *want, "{bounds:?}");
        }
    }

    #[test]
    fn short_of_compares_with_what_is_in_force() {
        let limit = FdLimit {
            before: 256,
            now: 1024,
        };
        assert!(limit.short_of(2048));
        assert!(!limit.short_of(1024));
    }

    /// Raising to what is already in force changes nothing and reports it.
    #[cfg(unix)]
    #[test]
    fn raising_never_lowers() {
        let limit = raise_to(1).expect("the limit can be read");
        assert!(limit.now >= limit.before, "{limit:?}");
        assert_eq!(limit.now, limit.before, "asking for 1 must not lower it");
    }
}
