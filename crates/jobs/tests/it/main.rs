//! Integration tests of vectura-jobs, in one binary: the jobs run as a server runs them (on a
//! blocking thread of a tokio runtime), with progress, cancel and the request's errors.

mod backtest_job;
mod common;
mod sweep_job;
