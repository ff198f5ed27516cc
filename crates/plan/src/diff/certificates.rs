//! Certificates of servers on hosts, renewed by a planned change before
//! they expire (docs/tls.md, "Renewal"). A server's certificate lasts 365
//! days; from 30 days before its end the plan renews it, and says when it
//! expires. The time is the plan's input (`ObservedFacts::now`), never a
//! clock read here; a plan given none judges no certificate.

use dbgroups_manifest::{Group, ProviderKind};
use dbgroups_state::GroupState;

use super::Differ;
use crate::change::ChangeKind;
use crate::input::GroupAddress;

/// A certificate is renewed this long before it expires.
const RENEW_BEFORE_SECONDS: u64 = 30 * 24 * 60 * 60;

/// Whether a certificate that expires at `expires` is due at `now` (both
/// seconds since the Unix epoch).
fn renewal_due(expires: u64, now: u64) -> bool {
    now.saturating_add(RENEW_BEFORE_SECONDS) >= expires
}

impl Differ<'_> {
    /// One renewal per kept server on a host whose certificate is due; a
    /// server on a host without one (made before its engine served TLS
    /// there) is named in a warning, since nothing renews what is absent.
    pub(super) fn diff_certificates(
        &mut self,
        group: &Group,
        recorded: &GroupState,
        address: &GroupAddress,
    ) {
        if !crate::rules::for_type(group.db_type).tls_on_hosts {
            return;
        }
        let has_authority = self.input.state.is_some_and(|s| s.authority.is_some());
        let kept = |name: &str| {
            group.servers.iter().any(|s| s.unique_name.value == name)
                && !self.input.intents.remove_servers.contains(name)
                && !self.input.intents.resync.contains(name)
        };
        for server in &recorded.servers {
            if server.provider == ProviderKind::Local || !kept(&server.unique_name) {
                continue;
            }
            match (server.certificate_expires, self.input.observed.now) {
                (Some(expires), Some(now)) if renewal_due(expires, now) => {
                    let when = date(expires);
                    let reason = if expires <= now {
                        format!("its certificate expired on {when}")
                    } else {
                        format!(
                            "its certificate expires on {when}, within {} days",
                            RENEW_BEFORE_SECONDS / 86_400
                        )
                    };
                    self.change(
                        ChangeKind::RenewCertificate {
                            group: address.clone(),
                            server: server.unique_name.clone(),
                            expires,
                        },
                        reason,
                    );
                }
                (None, _) if has_authority && server.port.is_some() => {
                    self.report.warnings.push(format!(
                        "{} ({address}) on {} has no certificate: it was made before its engine served TLS on hosts, so it takes plain-text connections and no renewal applies; replace it (scale up, then remove it) to give it one",
                        server.unique_name,
                        server.address.as_deref().unwrap_or("its host")
                    ));
                }
                _ => {}
            }
        }
    }
}

/// `2027-01-02`, for plans: the day of `seconds` after the epoch (UTC),
/// by the proleptic Gregorian calendar (H. Hinnant's `civil_from_days`),
/// with no clock or time library in this pure crate.
pub(crate) fn date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn renewal_is_due_thirty_days_before_the_end() {
        let expires = 1_000 * DAY;
        assert!(!renewal_due(expires, expires - 31 * DAY));
        assert!(renewal_due(expires, expires - 30 * DAY));
        assert!(renewal_due(expires, expires + DAY));
    }

    #[test]
    fn dates_are_shown_as_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_798_761_600), "2027-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_761_599), "2026-12-31");
    }
}
