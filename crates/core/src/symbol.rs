//! Ticker symbols.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid symbol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SymbolError {
    #[error("symbol is empty: give a ticker such as SPY")]
    Empty,
    #[error("symbol {0:?} is longer than 10 characters: give a ticker such as SPY")]
    TooLong(String),
    #[error("symbol {0:?} has a character other than A-Z, 0-9, '.', '-' or '/': give a ticker such as BRK.B")]
    BadChar(String),
}

/// An upper-case ticker (1–10 characters of `A-Z0-9.-/`), as Alpaca and the original form accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

impl Symbol {
    /// Parses a ticker, upper-casing it as the original form did.
    pub fn new(s: &str) -> Result<Self, SymbolError> {
        let up = s.trim().to_ascii_uppercase();
        if up.is_empty() {
            return Err(SymbolError::Empty);
        }
        if up.len() > 10 {
            return Err(SymbolError::TooLong(up));
        }
        if !up.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/')
        }) {
            return Err(SymbolError::BadChar(up));
        }
        Ok(Symbol(up))
    }

    /// The ticker text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Symbol::new(&s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_uppercases() {
        assert_eq!(Symbol::new(" spy ").unwrap().as_str(), "SPY");
        assert_eq!(Symbol::new("brk.b").unwrap().as_str(), "BRK.B");
        assert_eq!(Symbol::new(""), Err(SymbolError::Empty));
        assert!(matches!(
            Symbol::new("ABCDEFGHIJK"),
            Err(SymbolError::TooLong(_))
        ));
        assert!(matches!(Symbol::new("A B"), Err(SymbolError::BadChar(_))));
    }
}
