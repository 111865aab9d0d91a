//! vectura-web's integration tests: a real server on 127.0.0.1 over a real SQLite store, spoken to
//! over HTTP (reqwest) and, for the browser tests, through headless Chromium (chromedriver).

mod backtests;
mod browser;
mod data_api;
mod data_fetch;
mod demo;
mod driver;
mod error_pages;
mod live_browser;
mod live_pages;
mod openapi;
mod security;
mod support;
mod sweeps;
