//! What a login still owes. One function, `decide`, reads the site's settings, the client's
//! requirement, what the request asked (`acr_values`, the `claims` parameter's essential `acr`,
//! `max_age`, `prompt`), what the account can do, and the factors done, and answers: satisfied (with
//! `amr`, `acr` and `auth_time`), the step that is owed, or a refusal. Every way to a session and
//! every authorization response goes through it.

use super::acr::Acr;
use super::factor::{Factor, Method, amr};

/// What face login may do on this site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceRole {
    /// No face login.
    Off,
    /// A face may sign in alone (1:1 with a username, 1:N without) or follow a password.
    Login,
    /// A face is only ever a second factor, after a password.
    SecondFactorOnly,
}

/// The operator's settings that bind every login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitePolicy {
    pub face: FaceRole,
    /// Accounts with a password and an enrolled face must use both.
    pub face_second_factor: bool,
    /// A face counts only with a passed liveness check.
    pub liveness_required: bool,
}

impl Default for SitePolicy {
    fn default() -> Self {
        SitePolicy {
            face: FaceRole::Login,
            face_second_factor: false,
            liveness_required: true,
        }
    }
}

/// What the relying party asked for in this request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// `acr_values`, in order of preference (voluntary: met when the account can).
    pub acr_values: Vec<String>,
    /// The `claims` parameter's `acr` with `essential: true` (its `values`, or `value`): one of them
    /// must be met, or the request fails.
    pub essential_acr: Option<Vec<String>>,
    pub max_age: Option<i64>,
    pub prompt_login: bool,
    pub prompt_none: bool,
}

/// What the account can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub has_password: bool,
    pub has_face: bool,
}

/// The step a login must take next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nobody is signed in (for this request): any first factor the site offers.
    FirstFactor,
    Password,
    /// A face match of the same account, with a liveness check when `live`.
    Face {
        live: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `prompt=none` and a login is owed.
    LoginRequired,
    /// The client or the request needs what this account or site cannot give.
    Unmet(String),
}

/// A login that meets every requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub amr: Vec<String>,
    pub acr: Acr,
    pub auth_time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Satisfied(Outcome),
    Owed(Step),
    Refused(Refusal),
}

/// Everything `decide` reads.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub site: &'a SitePolicy,
    /// The client's own minimum (`facegate client policy`), if any.
    pub client_acr: Option<Acr>,
    pub requested: &'a Requested,
    /// The account the factors belong to; `None` before any factor.
    pub account: Option<Account>,
    /// Factors of that account: the session's and this login's.
    pub factors: &'a [Factor],
    /// The factors done for this very login (the transaction's): fresh for it whatever `max_age`
    /// says, and the only ones `prompt=login` accepts.
    pub this_login: &'a [Factor],
    pub now: i64,
}

impl SitePolicy {
    /// Does this factor count on this site?
    fn counts(&self, f: &Factor) -> bool {
        if f.method.is_face() {
            self.face != FaceRole::Off && (!self.liveness_required || f.method.is_live_face())
        } else {
            true
        }
    }

    /// What every session on this site must have, for this account.
    fn baseline(&self, account: Account) -> Option<Acr> {
        let mfa = if self.liveness_required {
            Acr::MfaFaceLive
        } else {
            Acr::MfaFace
        };
        match self.face {
            FaceRole::Off => Some(Acr::Pwd),
            FaceRole::SecondFactorOnly if account.has_face => Some(mfa),
            FaceRole::SecondFactorOnly => Some(Acr::Pwd),
            FaceRole::Login if self.face_second_factor && account.has_face && account.has_password => {
                Some(mfa)
            }
            FaceRole::Login => None,
        }
    }

    /// Can this account ever meet `acr` here?
    fn achievable(&self, acr: Acr, account: Account) -> bool {
        (!acr.needs_password() || account.has_password)
            && (!acr.needs_face() || (account.has_face && self.face != FaceRole::Off))
    }
}

pub fn decide(cx: &Context<'_>) -> Decision {
    let r = cx.requested;
    let fresh = |f: &&Factor| {
        let for_this = cx.this_login.contains(f);
        if r.prompt_login {
            return for_this;
        }
        for_this || r.max_age.is_none_or(|m| cx.now - f.at <= m)
    };
    let usable: Vec<&Factor> = cx
        .factors
        .iter()
        .filter(|f| cx.site.counts(f))
        .filter(fresh)
        .collect();
    let owe = |step| {
        if r.prompt_none {
            Decision::Refused(Refusal::LoginRequired)
        } else {
            Decision::Owed(step)
        }
    };
    let Some(account) = cx.account.filter(|_| !usable.is_empty()) else {
        return owe(Step::FirstFactor);
    };

    // Requirements, all of which must hold.
    let mut needs: Vec<Acr> = cx.site.baseline(account).into_iter().collect();
    if let Some(a) = cx.client_acr {
        if !cx.site.achievable(a, account) {
            return Decision::Refused(Refusal::Unmet(format!(
                "this application requires {}, which this account cannot provide",
                a.as_str()
            )));
        }
        needs.push(a);
    }
    let essential = match &r.essential_acr {
        Some(values) => {
            let chosen = values
                .iter()
                .filter_map(|v| Acr::parse(v))
                .find(|a| cx.site.achievable(*a, account));
            match chosen {
                Some(a) => {
                    needs.push(a);
                    Some(a)
                }
                None => {
                    return Decision::Refused(Refusal::Unmet(format!(
                        "none of the essential acr values ({}) can be met for this account",
                        values.join(" ")
                    )));
                }
            }
        }
        None => None,
    };
    let voluntary = r
        .acr_values
        .iter()
        .filter_map(|v| Acr::parse(v))
        .find(|a| cx.site.achievable(*a, account));
    if let Some(a) = voluntary {
        needs.push(a);
    }

    let has_pwd = usable.iter().any(|f| f.method == Method::Password);
    let has_face = usable.iter().any(|f| f.method.is_face());
    let has_live = usable.iter().any(|f| f.method.is_live_face());
    for need in &needs {
        if need.satisfied_by(&usable) {
            continue;
        }
        if need.needs_password() && !has_pwd {
            return owe(Step::Password);
        }
        if (need.needs_face() && !has_face) || (need.needs_liveness() && !has_live) {
            return owe(Step::Face {
                live: need.needs_liveness() || cx.site.liveness_required,
            });
        }
    }
    // The acr given: what was asked for (essential first), else the strongest class met.
    let acr = essential
        .or(voluntary)
        .filter(|a| a.satisfied_by(&usable))
        .or_else(|| Acr::ALL.into_iter().find(|a| a.satisfied_by(&usable)))
        .unwrap_or(Acr::Pwd);
    Decision::Satisfied(Outcome {
        amr: amr(usable.iter().copied()),
        acr,
        auth_time: usable.iter().map(|f| f.at).max().unwrap_or(cx.now),
    })
}

#[cfg(test)]
mod tests {
    use super::super::factor::FaceMode;
    use super::*;

    const NOW: i64 = 10_000;
    const START: i64 = 9_900;

    fn pwd(at: i64) -> Factor {
        Factor::new(Method::Password, at, None)
    }
    fn face(at: i64, live: bool) -> Factor {
        Factor::new(
            Method::Face {
                mode: FaceMode::Verify,
                live,
            },
            at,
            None,
        )
    }

    const BOTH: Account = Account {
        has_password: true,
        has_face: true,
    };
    const PWD_ONLY: Account = Account {
        has_password: true,
        has_face: false,
    };
    const FACE_ONLY: Account = Account {
        has_password: false,
        has_face: true,
    };

    fn site(face: FaceRole, second: bool, live: bool) -> SitePolicy {
        SitePolicy {
            face,
            face_second_factor: second,
            liveness_required: live,
        }
    }

    fn ok(amr: &[&str], acr: Acr) -> Decision {
        Decision::Satisfied(Outcome {
            amr: amr.iter().map(|s| s.to_string()).collect(),
            acr,
            auth_time: NOW - 10,
        })
    }

    fn req(acr_values: &[&str], essential: Option<&[&str]>) -> Requested {
        Requested {
            acr_values: acr_values.iter().map(|s| s.to_string()).collect(),
            essential_acr: essential.map(|e| e.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    /// (name, site, client's acr, request, account, factors done, expected decision)
    type Case = (
        &'static str,
        SitePolicy,
        Option<Acr>,
        Requested,
        Option<Account>,
        Vec<Factor>,
        Decision,
    );

    /// factors done x requirement -> decision, amr, acr.
    #[test]
    fn policy_table() {
        let login = site(FaceRole::Login, false, true);
        let two_fa = site(FaceRole::Login, true, true);
        let second_only = site(FaceRole::SecondFactorOnly, false, true);
        let no_live = site(FaceRole::Login, false, false);
        let live_step = Decision::Owed(Step::Face { live: true });
        let t = NOW - 10;
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("nobody yet", login, None, req(&[], None), None, vec![], Decision::Owed(Step::FirstFactor)),
            ("password alone", login, None, req(&[], None), Some(BOTH), vec![pwd(t)], ok(&["pwd"], Acr::Pwd)),
            ("live face alone", login, None, req(&[], None), Some(BOTH), vec![face(t, true)], ok(&["face", "user"], Acr::FaceLive)),
            ("a face without liveness does not count when it is required", login, None, req(&[], None), Some(BOTH), vec![face(t, false)], Decision::Owed(Step::FirstFactor)),
            ("a face without liveness, liveness off", no_live, None, req(&[], None), Some(BOTH), vec![face(t, false)], ok(&["face"], Acr::Face)),
            ("2FA: password owes the face", two_fa, None, req(&[], None), Some(BOTH), vec![pwd(t)], live_step.clone()),
            ("2FA: a face alone owes the password", two_fa, None, req(&[], None), Some(BOTH), vec![face(t, true)], Decision::Owed(Step::Password)),
            ("2FA: both", two_fa, None, req(&[], None), Some(BOTH), vec![pwd(t), face(t, true)], ok(&["pwd", "face", "user", "mfa"], Acr::MfaFaceLive)),
            ("2FA: no face enrolled, password is enough", two_fa, None, req(&[], None), Some(PWD_ONLY), vec![pwd(t)], ok(&["pwd"], Acr::Pwd)),
            ("2FA: face-only account (no password)", two_fa, None, req(&[], None), Some(FACE_ONLY), vec![face(t, true)], ok(&["face", "user"], Acr::FaceLive)),
            ("face only as second factor: a face alone owes the password", second_only, None, req(&[], None), Some(BOTH), vec![face(t, true)], Decision::Owed(Step::Password)),
            ("face only as second factor: password owes the face", second_only, None, req(&[], None), Some(BOTH), vec![pwd(t)], live_step.clone()),
            ("step-up: acr_values asks for a live face", login, None, req(&["urn:facegate:face:live"], None), Some(BOTH), vec![pwd(t)], live_step.clone()),
            ("step-up done: the requested acr is given", login, None, req(&["urn:facegate:face:live"], None), Some(BOTH), vec![pwd(t), face(t, true)], ok(&["pwd", "face", "user", "mfa"], Acr::FaceLive)),
            ("voluntary acr the account cannot meet is ignored", login, None, req(&["urn:facegate:face:live"], None), Some(PWD_ONLY), vec![pwd(t)], ok(&["pwd"], Acr::Pwd)),
            ("essential acr the account cannot meet is refused", login, None, req(&[], Some(&["urn:facegate:face:live"])), Some(PWD_ONLY), vec![pwd(t)], Decision::Refused(Refusal::Unmet("none of the essential acr values (urn:facegate:face:live) can be met for this account".into()))),
            ("essential acr owes the face", login, None, req(&[], Some(&["urn:facegate:mfa:face:live"])), Some(BOTH), vec![pwd(t)], live_step.clone()),
            ("unknown acr values are ignored", login, None, req(&["urn:other"], None), Some(BOTH), vec![pwd(t)], ok(&["pwd"], Acr::Pwd)),
            ("client requires password + live face", login, Some(Acr::MfaFaceLive), req(&[], None), Some(BOTH), vec![face(t, true)], Decision::Owed(Step::Password)),
            ("client requires a face the account lacks", login, Some(Acr::FaceLive), req(&[], None), Some(PWD_ONLY), vec![pwd(t)], Decision::Refused(Refusal::Unmet("this application requires urn:facegate:face:live, which this account cannot provide".into()))),
            ("face login off: the client's face requirement cannot be met", site(FaceRole::Off, false, true), Some(Acr::FaceLive), req(&[], None), Some(BOTH), vec![pwd(t)], Decision::Refused(Refusal::Unmet("this application requires urn:facegate:face:live, which this account cannot provide".into()))),
        ];
        for (name, site, client_acr, requested, account, factors, want) in cases {
            let got = decide(&Context {
                site: &site,
                client_acr,
                requested: &requested,
                account,
                factors: &factors,
                this_login: &[],
                now: NOW,
            });
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn freshness_follows_max_age_and_prompt() {
        let site = site(FaceRole::Login, false, true);
        let old = vec![pwd(NOW - 5000)];
        // `f` are the factors; the last `this` of them were done for this login.
        let run = |r: Requested, f: &[Factor], this: usize| {
            decide(&Context {
                site: &site,
                client_acr: None,
                requested: &r,
                account: Some(BOTH),
                factors: f,
                this_login: &f[f.len() - this..],
                now: NOW,
            })
        };
        let max_age = Requested {
            max_age: Some(60),
            ..Default::default()
        };
        assert_eq!(run(max_age.clone(), &old, 0), Decision::Owed(Step::FirstFactor));
        // A login made for this request satisfies max_age however long consent then took.
        assert!(matches!(
            run(max_age, &[pwd(START - 500)], 1),
            Decision::Satisfied(_)
        ));
        let login = Requested {
            prompt_login: true,
            ..Default::default()
        };
        // prompt=login: a session's factor of the very same second is still not this login's.
        assert_eq!(
            run(login.clone(), &[pwd(NOW)], 0),
            Decision::Owed(Step::FirstFactor)
        );
        assert!(matches!(run(login, &[pwd(START)], 1), Decision::Satisfied(_)));
        let none = Requested {
            prompt_none: true,
            acr_values: vec!["urn:facegate:face:live".into()],
            ..Default::default()
        };
        assert_eq!(
            run(none.clone(), &[], 0),
            Decision::Refused(Refusal::LoginRequired)
        );
        assert_eq!(run(none, &old, 0), Decision::Refused(Refusal::LoginRequired));
        // auth_time is the latest factor's.
        match run(Requested::default(), &[pwd(NOW - 300), face(NOW - 20, true)], 0) {
            Decision::Satisfied(o) => assert_eq!(o.auth_time, NOW - 20),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn discovery_lists_every_class_and_values_round_trip() {
        for a in Acr::ALL {
            assert_eq!(Acr::parse(a.as_str()), Some(a));
        }
        assert_eq!(Acr::supported().len(), 5);
        assert!(Acr::supported().contains(&"urn:facegate:mfa:face:live"));
        // Password + face has its own class, not the face one.
        assert_ne!(Acr::MfaFaceLive.as_str(), Acr::FaceLive.as_str());
    }
}
