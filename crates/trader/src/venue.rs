//! Which account the trader may trade: paper by default; real money only with `--live` and Alpaca's
//! live endpoint, never by accident.

use vectura_broker::alpaca::{AlpacaConfig, Environment};

use crate::error::TraderError;

/// Checks that the trading endpoint matches the `live` flag: paper (or the local emulator) without
/// it; Alpaca's live endpoint, and nothing else, with it. An unknown host may be live, so it needs
/// `--live`, and `--live` refuses it (a live run names the live endpoint itself).
pub fn check_live(cfg: &AlpacaConfig, live: bool) -> Result<(), TraderError> {
    let env = cfg.environment();
    match (live, env) {
        (false, Environment::Paper | Environment::Local) => Ok(()),
        (true, Environment::Live) => Ok(()),
        (false, env) => Err(TraderError::Config(format!(
            "APCA_API_BASE_URL reaches {env}, which may trade real money: pass --live to trade it, or set APCA_API_BASE_URL=https://paper-api.alpaca.markets (or unset it) for paper trading"
        ))),
        (true, env) => Err(TraderError::Config(format!(
            "--live needs Alpaca's live endpoint, but APCA_API_BASE_URL reaches {env}: set APCA_API_BASE_URL=https://api.alpaca.markets and live keys in APCA_API_KEY_ID / APCA_API_SECRET_KEY, or drop --live for paper trading"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: Option<&str>) -> AlpacaConfig {
        let c = AlpacaConfig::new("PKX", "secret");
        match url {
            Some(u) => c.with_trading_url(u),
            None => c,
        }
    }

    #[test]
    fn paper_by_default_live_only_with_the_flag_and_the_live_url() {
        assert!(
            check_live(&cfg(None), false).is_ok(),
            "the default is paper"
        );
        assert!(check_live(&cfg(Some("http://127.0.0.1:9")), false).is_ok());
        let e = check_live(&cfg(None), true).unwrap_err().to_string();
        assert!(
            e.contains("set APCA_API_BASE_URL=https://api.alpaca.markets"),
            "{e}"
        );
        let e = check_live(&cfg(Some("https://api.alpaca.markets")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --live"), "{e}");
        assert!(check_live(&cfg(Some("https://api.alpaca.markets")), true).is_ok());
        let e = check_live(&cfg(Some("https://proxy.example.com")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --live"), "{e}");
        assert!(check_live(&cfg(Some("https://proxy.example.com")), true).is_err());
    }
}
