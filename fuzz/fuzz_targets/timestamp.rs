//! `Timestamp::parse` takes whatever a client sends as a time: it must never panic, and what it
//! accepts must print back to a string that parses to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_core::Timestamp;

fuzz_target!(|s: &str| {
    if let Ok(t) = Timestamp::parse(s) {
        let again = Timestamp::parse(&t.to_string());
        assert_eq!(again.ok(), Some(t), "{s:?} -> {t} does not round-trip");
    }
});
