//! A write transaction whose caller went away mid-way (a dropped future, a timeout) must not keep a
//! file database locked. sqlx 0.8 can leave one begun with nothing to end it: its `BEGIN IMMEDIATE`
//! awaits a check after the statement ran, and a caller cancelled there never gets the
//! `Transaction`. The demo's restart test met it as "database is locked" on its next open.

use std::time::{Duration, Instant};

use sqlx::Connection;
use vectura_store::{RiskLimits, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_nobody_can_end_does_not_keep_the_file_locked() {
    let dir = std::env::temp_dir().join(format!("vectura-cancelled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    let Store::Sqlite(pool) = &store else {
        unreachable!("a sqlite URL")
    };
    {
        let mut conn = pool.acquire().await.unwrap();
        let tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        assert!(tx.is_in_transaction());
        // What the cancelled caller leaves: the write lock taken, no `Transaction` to roll it back.
        std::mem::forget(tx);
        assert!(conn.is_in_transaction(), "the model of the leak holds");
    }
    // The connection went back to the pool: another opener (its migration takes the write lock)
    // and this pool's next write both get the lock at once, not after the 10 s busy timeout.
    let t0 = Instant::now();
    let other = tokio::time::timeout(Duration::from_secs(8), Store::open(&url))
        .await
        .expect("the lock was released: the open did not wait out the busy timeout")
        .unwrap();
    other
        .set_trade_controls("SPY", true, &RiskLimits::default())
        .await
        .expect("a write through the other pool");
    store
        .set_trade_controls("SPY", false, &RiskLimits::default())
        .await
        .expect("a write through the first pool");
    assert!(t0.elapsed() < Duration::from_secs(8));
    other.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
