//! Sessions read lately, kept for a moment: every request checks its session, and one database read
//! per request caps the API's rate (issue 18's load target). A logout through this server removes
//! its entry at once; a session ended by another process (`vectura user set-password`) stays usable
//! here for at most [`TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::CurrentSession;

/// How long a session read from the database is trusted without reading it again.
pub const TTL: Duration = Duration::from_secs(2);

/// Entries kept at most (a flood of made-up cookies never reaches the cache: only live sessions do).
const MAX: usize = 10_000;

/// The cache (see the module docs). Its Debug shows the count only (the entries hold CSRF tokens).
#[derive(Default)]
pub struct SessionCache {
    map: Mutex<HashMap<String, (CurrentSession, i64, Instant)>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.map.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("SessionCache")
            .field("sessions", &n)
            .finish()
    }
}

impl SessionCache {
    /// The session stored under `id_hash`, if it was read within [`TTL`] and has not expired.
    pub fn get(&self, id_hash: &str, now_ms: i64) -> Option<CurrentSession> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id_hash)
            .filter(|(_, expires, read)| *expires > now_ms && read.elapsed() < TTL)
            .map(|(s, _, _)| s.clone())
    }

    /// Keeps a session just read from the database (expiring at `expires_ms`).
    pub fn put(&self, s: &CurrentSession, expires_ms: i64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX {
            map.retain(|_, (_, _, read)| read.elapsed() < TTL);
            if map.len() >= MAX {
                map.clear();
            }
        }
        map.insert(s.id_hash.clone(), (s.clone(), expires_ms, Instant::now()));
    }

    /// Forgets a session (logout).
    pub fn remove(&self, id_hash: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str) -> CurrentSession {
        CurrentSession {
            username: "admin".into(),
            csrf_token: "t".into(),
            id_hash: id.into(),
        }
    }

    #[test]
    fn a_kept_session_is_given_until_it_expires_or_is_removed() {
        let c = SessionCache::default();
        assert!(c.get("a", 0).is_none());
        c.put(&s("a"), 1_000);
        assert_eq!(c.get("a", 999).map(|s| s.id_hash), Some("a".into()));
        assert!(c.get("a", 1_000).is_none(), "expired");
        c.remove("a");
        assert!(c.get("a", 0).is_none(), "logged out");
    }
}
