//! Passwords (Argon2id), random tokens, sessions and the login rate limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::WebError;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// The longest password accepted (hashing is costly; nobody types more).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vectura_session";
/// The cookie carrying the login form's CSRF token before any session exists.
pub const LOGIN_CSRF_COOKIE: &str = "vectura_login_csrf";

/// Checks a new password's length: the reason, naming the rule, when it is refused.
pub fn check_new_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password has {n} characters: give at least {MIN_PASSWORD_LEN}"
        ));
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "the password is longer than {MAX_PASSWORD_LEN} bytes: give a shorter one"
        ));
    }
    Ok(())
}

/// Hashes a password with Argon2id (the crate's default parameters, a random salt) into a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(pw: &str) -> Result<String, WebError> {
    check_new_password(pw).map_err(WebError::Invalid)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| WebError::Hash(e.to_string()))
}

/// Whether `pw` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(pw: &str, hash: &str) -> bool {
    if pw.len() > MAX_PASSWORD_LEN {
        return false;
    }
    PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// 32 random bytes from the OS, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The SHA-256 of a token, as lower-case hex (how sessions are stored).
pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A logged-in request's session (put in the request's extensions by the auth layer).
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub username: String,
    pub csrf_token: String,
    /// The stored id (SHA-256 of the cookie).
    pub id_hash: String,
}

/// Failed logins per client address and in total, within a sliding window: after
/// `per_client` failures from one address (or `total` from all) within `window`, further attempts
/// are refused until the oldest failure leaves the window, whatever the password. A success clears
/// the address's failures.
#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    per_client: usize,
    total: usize,
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl LoginLimiter {
    /// A limiter: `per_client` failures per address, `total` overall, within `window`.
    pub fn new(window: Duration, per_client: usize, total: usize) -> LoginLimiter {
        LoginLimiter {
            window,
            per_client,
            total,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn prune(&self, map: &mut HashMap<IpAddr, Vec<Instant>>, now: Instant) {
        map.retain(|_, v| {
            v.retain(|t| now.duration_since(*t) < self.window);
            !v.is_empty()
        });
    }

    /// `Err(seconds to wait)` when `ip` may not try now.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.prune(&mut map, now);
        let wait = |v: &[Instant]| {
            v.iter()
                .min()
                .map(|t| self.window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1)
        };
        if let Some(v) = map.get(&ip) {
            if v.len() >= self.per_client {
                return Err(wait(v));
            }
        }
        let all: Vec<Instant> = map.values().flatten().copied().collect();
        if all.len() >= self.total {
            return Err(wait(&all));
        }
        Ok(())
    }

    /// Records a failed attempt from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(ip).or_default().push(Instant::now());
    }

    /// Clears `ip`'s failures after a success.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn the_limiter_refuses_after_the_limit_and_a_success_clears_it() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(ip).is_ok());
            l.failed(ip);
        }
        let wait = l.check(ip).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        assert!(l.check(other).is_ok(), "another address is not locked out");
        l.succeeded(ip);
        assert!(l.check(ip).is_ok());
    }

    #[test]
    fn the_limiter_has_a_total_cap() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 4);
        for i in 1..=4u8 {
            l.failed(IpAddr::from([10, 0, 0, i]));
        }
        assert!(l.check(IpAddr::from([10, 0, 0, 9])).is_err());
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(
            cookie("a=1; vectura_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("a=1", SESSION_COOKIE), None);
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
