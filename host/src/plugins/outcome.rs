//! What a failed provider call did at the provider, and whose fault it was: the facts
//! routing decides on. A call that did nothing there may go to another instance; one whose
//! outcome is unknown never does (money moves at most once); a technical failure counts
//! against the instance's health, a decline or a refused input does not.

use super::CallError;
use payhost_plugin_api::{codes, Effect, PluginError};

/// Gives a plugin's error the effect it had, when the plugin did not say: none when no
/// HTTP request of the call got past connecting (the provider never heard of it, or the
/// plugin refused before sending), else by its code — a refusal or a decline is an answer
/// (nothing done), an outage or a broken answer leaves it unknown.
pub fn settle_effect(mut e: PluginError, contacted: bool) -> PluginError {
    if e.effect.is_none() {
        e.effect = Some(if !contacted || answered(&e.code) {
            Effect::Nothing
        } else {
            Effect::Uncertain
        });
    }
    e
}

/// Codes that are the provider's (or the plugin's) answer: it did not act.
fn answered(code: &str) -> bool {
    matches!(
        code,
        codes::INVALID_REQUEST
            | codes::NOT_FOUND
            | codes::CARD_DECLINED
            | codes::UNSUPPORTED
            | codes::CONFIG
            | codes::AUTHENTICATION
            | codes::RATE_LIMITED
            | codes::CONFLICT
            | codes::INVALID_SIGNATURE
    )
}

/// Codes that are the instance's fault (its provider down or refusing it, the plugin
/// broken), not the card's or the caller's.
fn technical(code: &str) -> bool {
    matches!(
        code,
        codes::UNAVAILABLE
            | codes::RATE_LIMITED
            | codes::AUTHENTICATION
            | codes::DEADLINE
            | codes::PANICKED
            | codes::PROTOCOL
            | codes::INTERNAL
    )
}

impl CallError {
    /// What the call did at the provider.
    pub fn effect(&self) -> Effect {
        match self {
            CallError::UnknownProvider { .. }
            | CallError::NotRunning { .. }
            | CallError::Unsupported { .. }
            | CallError::Busy { .. } => Effect::Nothing,
            CallError::Plugin(e) => e.effect.clone().unwrap_or(Effect::Uncertain),
            // The plugin may have sent its request before it hung or panicked.
            CallError::Panicked { .. } | CallError::Timeout { .. } => Effect::Uncertain,
        }
    }

    /// The instance's fault: counts against its health. A decline, a refused input, an
    /// object that does not exist, a capability it never declared are not.
    pub fn is_technical(&self) -> bool {
        match self {
            CallError::Busy { .. } | CallError::Panicked { .. } | CallError::Timeout { .. } => true,
            CallError::Plugin(e) => technical(&e.code),
            CallError::UnknownProvider { .. }
            | CallError::NotRunning { .. }
            | CallError::Unsupported { .. } => false,
        }
    }

    /// Another instance may take the request: this one did nothing, through no fault of
    /// the request (it could not be reached, was not running, had no free call slot, or
    /// refused the instance's own credentials or pace).
    pub fn can_fail_over(&self) -> bool {
        let unreachable = matches!(
            self,
            CallError::UnknownProvider { .. } | CallError::NotRunning { .. }
        );
        self.effect() == Effect::Nothing && (unreachable || self.is_technical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(code: &str, contacted: bool) -> CallError {
        CallError::Plugin(settle_effect(PluginError::new(code, "x"), contacted))
    }

    #[test]
    fn a_call_that_reached_nobody_did_nothing_and_may_go_elsewhere() {
        let refused = plugin(codes::UNAVAILABLE, false);
        assert_eq!(refused.effect(), Effect::Nothing);
        assert!(refused.can_fail_over() && refused.is_technical());
        let busy = CallError::Busy {
            provider: "a".into(),
            limit: 1,
        };
        assert!(busy.can_fail_over() && busy.is_technical());
    }

    #[test]
    fn an_outage_after_the_request_left_is_unknown_and_never_goes_elsewhere() {
        for e in [
            plugin(codes::UNAVAILABLE, true),
            plugin(codes::DEADLINE, true),
            plugin(codes::INTERNAL, true),
            CallError::Timeout {
                provider: "a".into(),
                operation: "create_payment".into(),
                ms: 1,
            },
            CallError::Panicked {
                provider: "a".into(),
                operation: "create_payment".into(),
            },
        ] {
            assert_eq!(e.effect(), Effect::Uncertain, "{e}");
            assert!(!e.can_fail_over() && e.is_technical(), "{e}");
        }
    }

    #[test]
    fn refusals_are_answers_and_only_the_instances_own_go_elsewhere() {
        let limited = plugin(codes::RATE_LIMITED, true);
        assert!(
            limited.can_fail_over(),
            "a 429 did nothing: another may take it"
        );
        for code in [
            codes::INVALID_REQUEST,
            codes::CARD_DECLINED,
            codes::NOT_FOUND,
        ] {
            let e = plugin(code, true);
            assert_eq!(e.effect(), Effect::Nothing, "{code}");
            assert!(
                !e.is_technical() && !e.can_fail_over(),
                "{code}: the caller's answer"
            );
        }
    }

    #[test]
    fn what_the_plugin_says_wins_over_the_guess() {
        let said = PluginError::new(codes::UNAVAILABLE, "503 before processing")
            .with_effect(Effect::Nothing);
        assert!(CallError::Plugin(settle_effect(said, true)).can_fail_over());
        let unsure = PluginError::new(codes::INVALID_REQUEST, "x").with_effect(Effect::Uncertain);
        assert_eq!(
            CallError::Plugin(settle_effect(unsure, false)).effect(),
            Effect::Uncertain
        );
    }
}
